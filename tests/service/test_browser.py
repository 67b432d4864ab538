"""A real browser (Debian's Chromium, headless) loads the HTML page once."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from service_mails import series_mails

# As root, Chromium needs --no-sandbox; the network flags stop it from calling home on a
# machine without network (each refused connection otherwise slows the start).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium installed (apt-get install chromium)")


def test_html_page_renders_series_runs_and_findings_in_chromium(
    service_factory: Any, tmp_path: Path
) -> None:
    browser = _chromium()
    svc = service_factory()
    svc.start_server()
    svc.start_worker("w1")
    for raw in series_mails("page-a", 2, buggy=True):
        svc.post(raw)
    for raw in series_mails("page-b", 3)[:2]:  # incomplete: waiting
        svc.post(raw)
    svc.wait_runs(1)
    deadline = time.time() + 30
    while svc.get("/v1/series/page-b-v1-0@example.org").status_code != 200:
        assert time.time() < deadline, "incomplete series never assembled"
        time.sleep(0.2)
    profile = tmp_path / "chromium-profile"
    shot = tmp_path / "page.png"
    base = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run(
        [*base, "--dump-dom", svc.url + "/"], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert "<h1>reviewbot: recent series and runs</h1>" in html
    assert "[v1] mm: memcg: fix page-a" in html and "rcu-lock-imbalance" in html
    assert "waiting" in html and "2-3 not on this list" in html
    # the filters and the findings column, as the browser built the page
    assert '>with findings</a>' in html and "<th>Findings</th>" in html
    cells = re.findall(r"<td>(<a href=\"/v1/runs/\d+\">.*?</a>|-)</td><td>\d+ s ago", html)
    assert any("error" in c or "warning" in c for c in cells), cells
    only = subprocess.run([*base, "--dump-dom", svc.url + "/?findings=1"],
                          capture_output=True, text=True, timeout=120)
    assert only.returncode == 0 and "page-a" in only.stdout and "page-b" not in only.stdout
    shot_run = subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1280,900", svc.url + "/"],
        capture_output=True, text=True, timeout=120,
    )
    assert shot_run.returncode == 0, shot_run.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
