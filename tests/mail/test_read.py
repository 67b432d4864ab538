from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reviewbot.errors import BadInputError
from reviewbot.mail.read import RawMessage, iter_path
from reviewbot.model import InputError


def raws(path: Path | str) -> list[RawMessage]:
    out = []
    for item in iter_path(path):
        assert isinstance(item, RawMessage), item
        out.append(item)
    return out


def test_mboxrd_unquotes_one_level(mail_data: Path) -> None:
    msgs = raws(mail_data / "series-thread.mboxrd")
    assert len(msgs) == 12
    cover = msgs[0].data
    assert b"\nFrom the start of a line, quoted by mboxrd.\n" in cover
    assert b"\n>From a line that already had a quote.\n" in cover
    assert [m.position for m in msgs] == list(range(12))


def test_mboxo_unquotes_from(mail_data: Path) -> None:
    msgs = raws(mail_data / "unthreaded.mboxo")
    assert len(msgs) == 4
    assert all(m.data.startswith(b"From: Ulla") for m in msgs)


def test_gzip_is_transparent(mail_data: Path, tmp_path: Path) -> None:
    gz = tmp_path / "thread.mbox.gz"
    gz.write_bytes(gzip.compress((mail_data / "series-thread.mboxrd").read_bytes()))
    assert [m.data for m in raws(gz)] == [m.data for m in raws(mail_data / "series-thread.mboxrd")]


def test_maildir(mail_data: Path, tmp_path: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (tmp_path / sub).mkdir()
    shutil.copy(mail_data / "plain.eml", tmp_path / "new" / "1.host")
    shutil.copy(mail_data / "base64.eml", tmp_path / "cur" / "2.host:2,S")
    assert len(raws(tmp_path)) == 2


def test_folder_skips_hidden_files(mail_data: Path, tmp_path: Path) -> None:
    shutil.copy(mail_data / "plain.eml", tmp_path / "0001-a.patch")
    (tmp_path / ".swp").write_bytes(b"junk")
    assert len(raws(tmp_path)) == 1


def test_missing_path_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such file"):
        list(iter_path(tmp_path / "nope"))


def test_truncated_gzip_reports_and_continues(mail_data: Path, tmp_path: Path) -> None:
    data = gzip.compress((mail_data / "series-thread.mboxrd").read_bytes())
    (tmp_path / "a-broken.mbox.gz").write_bytes(data[: len(data) // 2])
    shutil.copy(mail_data / "plain.eml", tmp_path / "b.eml")
    items = list(iter_path(tmp_path))
    errors = [i for i in items if isinstance(i, InputError)]
    assert len(errors) == 1 and "a-broken.mbox.gz" in errors[0].source
    assert any(isinstance(i, RawMessage) and i.source.endswith("b.eml") for i in items)


def test_stdin_gzip(mail_data: Path) -> None:
    data = gzip.compress((mail_data / "series-thread.mboxrd").read_bytes())
    out = subprocess.run(
        [sys.executable, "-m", "reviewbot", "series", "-"], input=data, capture_output=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert b"[v2] memcg: three small things" in out.stdout


def test_crlf_mbox(mail_data: Path, tmp_path: Path) -> None:
    text = (mail_data / "series-thread.mboxrd").read_bytes().replace(b"\n", b"\r\n")
    (tmp_path / "crlf.mbox").write_bytes(text)
    assert len(raws(tmp_path / "crlf.mbox")) == 12
