"""Re-running a failed run: POST /v1/runs/ID/retry (signed) and `reviewbot retry`, against a
real server and worker. The run fails for a reason an operator can fix (its rules folder
is missing), is fixed, and is retried."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
from conftest import SECRET, service_config, write_config
from service_mails import series_mails

REPO = Path(__file__).resolve().parents[2]


def _retry_cli(svc: Any, run_id: int, secret: str = SECRET) -> subprocess.CompletedProcess[str]:
    env = {**svc.env, "REVIEWBOT_WEBHOOK_SECRET": secret}
    return subprocess.run([sys.executable, "-m", "reviewbot", "retry", str(run_id), "--url", svc.url],
                          env=env, capture_output=True, text=True, timeout=60, cwd=svc.tmp)


def test_a_failed_run_is_retried_after_the_fix_and_others_are_refused(
    service_factory: Any, tmp_path: Path
) -> None:
    svc = service_factory()
    rules = tmp_path / "rules-here-later"
    write_config(svc.tmp, {**service_config(tmp_path), "rules": {"path": str(rules)}})
    svc.start_server()
    svc.start_worker("w1")
    for raw in series_mails("retry-a", 2, buggy=True):
        assert svc.post(raw).status_code == 202
    [run] = svc.wait_runs(1, states=("failed",))
    assert "rules folder does not exist" in run["error"]
    assert svc.get("/v1/series/retry-a-v1-0@example.org").json()["state"] == "failed"

    # Unsigned, badly signed, or signed for another run: refused, nothing queued.
    url = f"{svc.url}/v1/runs/{run['id']}/retry"
    assert requests.post(url, timeout=10).status_code == 401
    assert _retry_cli(svc, run["id"], secret="wrong-secret").returncode == 2
    from reviewbot.service.auth import retry_signed_text, signed_headers

    other = signed_headers(SECRET.encode(), retry_signed_text(run["id"] + 1))
    assert requests.post(url, headers=other, timeout=10).status_code == 403
    assert svc.get(f"/v1/runs/{run['id']}").json()["state"] == "failed"

    shutil.copytree(REPO / "rules", rules)  # the operator's fix
    done = _retry_cli(svc, run["id"])
    assert done.returncode == 0, done.stderr
    [run] = svc.wait_runs(1)
    assert run["error"] == "" and run["findings"] >= 2
    assert svc.get("/v1/series/retry-a-v1-0@example.org").json()["state"] == "reviewed"

    again = _retry_cli(svc, run["id"])  # finished: the verdict stands
    assert again.returncode == 1 and "only a failed run is retried" in again.stderr
    assert _retry_cli(svc, 9999).returncode == 2
