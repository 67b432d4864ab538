from __future__ import annotations

import json
from pathlib import Path

import pytest

from reviewbot.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_series_json_schema(mail_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["series", "--json", str(mail_data / "series-thread.mboxrd")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "reviewbot/series/v1"
    v1 = next(s for s in doc["series"] if s["version"] == 1)
    assert v1["cover"] == "v1-cover@example.org"
    assert v1["superseded_by"] == "v2-cover@example.org"
    assert v1["expected"] == 3 and v1["missing"] == []
    patch2 = v1["patches"][1]
    assert set(patch2) >= {"index", "message_id", "subject", "author", "date", "patch_id", "trailers"}
    assert {"name": "Reviewed-by", "value": "Rita Reviewer <rita@example.org>",
            "from": "reply", "via": "rev-2@example.org"} in patch2["trailers"]
    assert doc["errors"] == []


def test_series_errors_listed_with_position(mail_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["series", "--json", str(mail_data / "html-only.eml"), str(mail_data / "plain.eml")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["errors"][0]["message_id"] is None or "html" in doc["errors"][0]["error"].lower()
    assert doc["errors"][0]["position"] == 0


def test_nothing_usable_exits_2(mail_data: Path) -> None:
    assert main(["series", str(mail_data / "html-only.eml")]) == 2


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["series", str(tmp_path / "none.mbox")]) == 2
    assert "none.mbox: no such file" in capsys.readouterr().err


def test_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["series"])
    assert exc.value.code == 2


def test_bad_config_exits_2(tmp_path: Path, mail_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("mail:\n  max_message_byte: 3\n")
    assert main(["--config", str(cfg), "series", str(mail_data / "plain.eml")]) == 2
    assert "unknown key mail.max_message_byte" in capsys.readouterr().err


def test_only_the_chosen_command_is_imported() -> None:
    from reviewbot.cli import _chosen_command

    assert _chosen_command(["--config", "series", "review", "x"]) == "review"
    assert _chosen_command(["-v", "check-b4"]) == "check_b4"
    assert _chosen_command(["--help"]) is None
    assert _chosen_command(["nosuch"]) is None


def test_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["nosuch"])
    assert exc.value.code == 2
    assert "invalid choice: 'nosuch'" in capsys.readouterr().err


@pytest.mark.parametrize("tty", [False, True])
def test_review_json_is_streamed_one_valid_document(
    tty: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each series is written when its review is done (memory stays that of one series);
    # on a terminal indented, in a pipe on one line: one valid document either way.
    fixtures = REPO / "rules" / "tests"
    paths = [str(fixtures / "refcount-imbalance" / "bad-01-early-return-leaks-memcg.patch"),
             str(fixtures / "refcount-imbalance" / "ok-01-early-return-puts-memcg.patch"),
             str(REPO / "tests" / "data" / "mail" / "html-only.eml")]
    monkeypatch.setattr("sys.stdout.isatty", lambda: tty)
    code = main(["review", "--no-tree", "--all-versions", "--format", "json", *paths])
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert code == 1 and doc["schema"] == "reviewbot/review/v1"
    assert len(doc["series"]) == 2 and len(doc["errors"]) == 1
    rules = [f["rule"] for s in doc["series"] for p in s["patches"] for f in p["findings"]]
    assert "refcount-imbalance" in rules
    assert (out.count("\n") > 10) == tty


def test_review_json_stays_valid_when_a_stage_raises(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An infrastructure error ends the review with exit 3; what was written is still one
    # valid document (here with no series), not a truncated one.
    from reviewbot.errors import InfraError

    def broken(*_args: object) -> None:
        raise InfraError("kernel tree vanished")

    monkeypatch.setattr("reviewbot.commands.review.review_series", broken)
    patch = REPO / "rules" / "tests" / "refcount-imbalance" / "bad-01-early-return-leaks-memcg.patch"
    assert main(["review", "--no-tree", "--format", "json", str(patch)]) == 3
    captured = capsys.readouterr()
    assert json.loads(captured.out)["series"] == []
    assert "kernel tree vanished" in captured.err
