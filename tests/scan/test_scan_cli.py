"""`reviewbot scan` as cron and systemd run it: exit codes, JSON, plain progress lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scanfixtures import Inbox, patch_mail, series_v1

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    pre = ["--config", str(config)] if config else []
    return subprocess.run([sys.executable, "-m", "reviewbot", *pre, "scan", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def test_json_report_and_a_quiet_second_run(inbox: Inbox, tmp_path: Path) -> None:
    inbox.deliver(*series_v1())
    state = str(tmp_path / "state")
    first = _cli(str(inbox.root), "--state-dir", state, "--format", "json")
    assert first.returncode in (0, 1), first.stderr
    doc = json.loads(first.stdout)
    assert doc["schema"] == "reviewbot/scan/v1"
    assert doc["kind"] == "public-inbox"
    assert doc["messages"]["read"] == 3
    assert doc["series"]["reviewed"] == 1
    assert doc["position"]["after"] == {"epoch:0": inbox.head()}
    assert first.returncode == (1 if any(
        f["severity"] in ("error", "warning") for f in doc["findings"]["new"]) else 0)
    # Not a terminal: plain progress lines, no carriage returns.
    assert "scan: 3 messages to read" in first.stderr
    assert "\r" not in first.stderr

    second = _cli(str(inbox.root), "--state-dir", state)
    assert second.returncode == 0, second.stderr
    assert "0 new messages" in second.stdout
    assert f"previous scan #{doc['scan_id']}" in second.stdout
    assert "findings: 0 new, 0 disappeared" in second.stdout


def test_all_scans_every_enabled_source_and_survives_a_broken_one(
        inbox: Inbox, tmp_path: Path) -> None:
    inbox.deliver(patch_mail("one@example.org", "[PATCH] mm: memcg: one", added=["\tx();"]))
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - name: test\n    path: {inbox.root}\n"
                       f"  - name: gone\n    path: {tmp_path / 'missing'}\n"
                       f"  - name: spare\n    path: /nonexistent\n    enabled: false\n")
    run = _cli("--all", "--sources", str(sources), "--state-dir", str(tmp_path / "s"),
               "--format", "json", "--no-progress")
    docs = json.loads(run.stdout)
    assert len(docs) == 2
    assert docs[0]["messages"]["read"] == 1
    assert "no such file" in docs[1]["error"]
    assert run.returncode == 2  # the worst outcome: a source was bad input


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert _cli().returncode == 2
    assert _cli(str(tmp_path / "missing"), "--state-dir", str(tmp_path)).returncode == 2


def test_scan_section_of_config_yaml_sets_sources_and_state(inbox: Inbox, tmp_path: Path) -> None:
    # The nightly job runs `scan --all` with no options: config.yaml's scan: section says
    # which sources and where their state lives; options given on the command line win.
    inbox.deliver(patch_mail("cfg@example.org", "[PATCH] mm: memcg: cfg", added=["\tx();"]))
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - name: test\n    path: {inbox.root}\n")
    state = tmp_path / "scan-state"
    config = tmp_path / "config.yaml"
    config.write_text(f"scan:\n  sources_file: {sources}\n  state_dir: {state}\n  jobs: 1\n")
    run = _cli("--all", "--format", "json", "--no-progress", config=config)
    assert run.returncode in (0, 1), run.stderr
    (doc,) = json.loads(run.stdout)
    assert doc["messages"]["read"] == 1
    assert doc["state"].startswith(str(state))
    config.write_text("scan:\n  max_buffered: many\n")
    bad = _cli("--all", config=config)
    assert bad.returncode == 2 and "scan.max_buffered must be int" in bad.stderr
