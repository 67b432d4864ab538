"""Fixtures for the service tests: settings in a tmp state folder, stores, real servers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reviewbot.config import Settings, settings_from_mapping
from reviewbot.service.store import Store

sys.path.insert(0, str(Path(__file__).parent))

from service_support import free_port, fresh_pg_database

SECRET = "test-secret-0123456789"


def service_config(tmp: Path, mail: dict[str, Any] | None = None, **service: Any
                   ) -> dict[str, Any]:
    svc = {
        "use_tree": False,  # rules on the hunks only: fast, no kernel tree needed
        "lease_s": 30,
        "sweep_interval_s": 1.0,
        "series_wait_s": 3600,
        "cover_wait_s": 2,
        "replay_window_s": 300,
    }
    svc.update(service)
    return {"service": svc, "mail": {"compute_patch_id": False, **(mail or {})}}


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # State must never land in the checkout or the developer's home.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_from_mapping(service_config(tmp_path))


def write_config(tmp: Path, config: dict[str, Any]) -> Path:
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


# -- PostgreSQL: a real server in a tmp folder, when the binaries are installed -----------


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / name).exists():
            return str(base / name)
    return None


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway PostgreSQL on loopback (initdb + postgres), or skip with the reason."""
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if not initdb or not postgres:
        pytest.skip("PostgreSQL server binaries (initdb, postgres) are not installed")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]')")
    # Not under pytest's tmp folder: that is mode 0700 and root's, out of postgres' reach.
    base = Path(tempfile.mkdtemp(prefix="reviewbot-pg-"))
    data = base / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:
        # postgres refuses to run as root: run it as the postgres (or nobody) account.
        import pwd

        user = "postgres" if _user_exists("postgres") else "nobody"
        pw = pwd.getpwnam(user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", user, "--"]
    port = free_port()
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-U", "reviewbot", "--auth=trust", "-E", "UTF8"],
        check=True, capture_output=True, timeout=120,
    )
    log = open(base / "pg.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [*prefix, postgres, "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
         "-k", str(base), "-c", "fsync=on"],
        stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # runuser does not pass SIGINT on: signal the group
    )
    url = f"postgresql://reviewbot@127.0.0.1:{port}/postgres"
    import psycopg as pg

    deadline = time.time() + 30
    while True:
        try:
            pg.connect(url, connect_timeout=2).close()
            break
        except pg.OperationalError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError((base / "pg.log").read_text()[-2000:]) from None
            time.sleep(0.2)
    try:
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # "fast" shutdown: does not wait for clients
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False




@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh migrated store of each kind (PostgreSQL skips when unavailable)."""
    if request.param == "sqlite":
        st = Store(f"sqlite:///{tmp_path / 'state' / 'reviewbot' / 'reviewbot.db'}")
    else:
        st = Store(fresh_pg_database(request.getfixturevalue("postgres_url")))
    st.migrate()
    try:
        yield st
    finally:
        st.close()


# -- real processes: `reviewbot serve` and `reviewbot worker` ------------------------------


class Service:
    """The service's processes for one test: a config, a state folder, servers, workers."""

    def __init__(self, tmp: Path, config: dict[str, Any], secret: str | None = SECRET) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.config_path = write_config(tmp, config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.update(
            REVIEWBOT_CONFIG=str(self.config_path),
            XDG_STATE_HOME=str(tmp / "state"),
            XDG_CACHE_HOME=str(tmp / "cache"),
            XDG_DATA_HOME=str(tmp / "data"),
            PYTHONUNBUFFERED="1",
        )
        self.env.pop("REVIEWBOT_WEBHOOK_SECRET", None)
        if secret is not None:
            self.env["REVIEWBOT_WEBHOOK_SECRET"] = secret
        self.secret = secret.encode() if secret else None
        self.server: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[Any] = []
        self.state = tmp / "state" / "reviewbot"

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / log_name, "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        return subprocess.Popen(
            [sys.executable, "-m", "reviewbot", *args],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp,
        )

    def start_server(self, wait: bool = True) -> subprocess.Popen[bytes]:
        self.server = self._spawn(["serve", "--port", str(self.port)], "server.log")
        if wait:
            self.wait_healthy()
        return self.server

    def wait_healthy(self, timeout: float = 30.0) -> None:
        import requests

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.server is not None and self.server.poll() is not None:
                raise RuntimeError(f"server exited {self.server.returncode}:\n{self.log('server')}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not healthy after {timeout} s:\n{self.log('server')}")

    def start_worker(self, name: str = "w1", *extra: str) -> subprocess.Popen[bytes]:
        proc = self._spawn(["-v", "worker", "--name", name, *extra], f"worker-{name}.log")
        self.workers[name] = proc
        return proc

    def kill9(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.kill()  # SIGKILL: no cleanup, no graceful shutdown
            proc.wait(timeout=10)

    def log(self, name: str) -> str:
        path = self.tmp / (f"{name}.log" if name == "server" else f"worker-{name}.log")
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def post(self, raw: bytes, *, headers: dict[str, str] | None = None,
             timeout: float = 10.0, skew: float = 0.0) -> Any:
        import requests

        from reviewbot.service.auth import signed_headers

        hdrs = {"Content-Type": "message/rfc822"}
        if self.secret is not None:
            hdrs.update(signed_headers(self.secret, raw, now=time.time() + skew))
        hdrs.update(headers or {})
        return requests.post(self.url + "/v1/mail", data=raw, headers=hdrs, timeout=timeout)

    def get(self, path: str) -> Any:
        import requests

        return requests.get(self.url + path, timeout=10)

    def store(self) -> Store:
        return Store(f"sqlite:///{self.state / 'reviewbot.db'}")

    def wait_runs(self, n: int, timeout: float = 60.0, states: tuple[str, ...] = ("finished",)
                  ) -> list[dict[str, Any]]:
        deadline = time.time() + timeout
        runs: list[dict[str, Any]] = []
        while time.time() < deadline:
            runs = self.get("/v1/runs?limit=1000").json()["runs"]
            if sum(1 for r in runs if r["state"] in states) >= n:
                return runs
            if "failed" not in states and any(r["state"] == "failed" for r in runs):
                break  # no point waiting: say why at once
            time.sleep(0.3)
        raise AssertionError(
            f"{n} runs not {states}: {[(r['id'], r['state'], r['error']) for r in runs]}"
            f"\n--- worker logs ---\n" + "\n".join(self.log(w) for w in self.workers)
        )

    def stop(self) -> None:
        for proc in [self.server, *self.workers.values()]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for log in self._logs:
            log.close()


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[Service] = []

    def make(secret: str | None = SECRET, **svc: Any) -> Service:
        service = Service(tmp_path / f"svc{len(made)}", service_config(tmp_path, **svc), secret)
        service.tmp.mkdir(parents=True, exist_ok=True)
        made.append(service)
        return service

    yield make
    for service in made:
        service.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (Debian's) on a loopback port, without persistence."""
    binary = shutil.which("redis-server")
    if not binary:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    base = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", str(base), "--logfile", str(base / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.time() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.1)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


