"""Fixture mail written for these tests, and a real public-inbox v2 inbox built from it.

The inbox is made the way architecture.md records it for Debian's public-inbox 1.9:
public-inbox-init -V2, spamcheck off, then one public-inbox-mda per message.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from reviewbot.model import Finding, Series
from reviewbot.pipeline import ReviewState, SeriesReview, StageOutcome

LIST_ADDR = "cgroups-test@example.org"
BASE_DATE = datetime(2020, 6, 1, 10, 0, tzinfo=UTC)


def patch_mail(
    msgid: str,
    subject: str,
    *,
    added: list[str],
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    author: str = "Ann Author <ann@example.org>",
    minutes: float = 0,
    function: str = "mem_cgroup_charge_demo",
    start: int = 120,
) -> bytes:
    """A git format-patch style mail adding ADDED lines to mm/memcontrol.c."""
    body_lines = "".join(f"+{line}\n" for line in added)
    n = len(added)
    diff = (
        "diff --git a/mm/memcontrol.c b/mm/memcontrol.c\n"
        "index 1111111..2222222 100644\n"
        "--- a/mm/memcontrol.c\n"
        "+++ b/mm/memcontrol.c\n"
        f"@@ -{start},6 +{start},{6 + n} @@ static int {function}(struct mem_cgroup *memcg)\n"
        " {\n"
        "\tint ret = 0;\n"
        "\n"
        f"{body_lines}"
        "\trcu_read_lock();\n"
        "\tret = try_charge(memcg, GFP_KERNEL, 1);\n"
        "\trcu_read_unlock();\n"
    )
    text = (
        f"{subject.split('] ', 1)[-1]}: change {function}.\n\n"
        "Signed-off-by: Ann Author <ann@example.org>\n"
        "---\n"
        " mm/memcontrol.c | 1 +\n\n"
        f"{diff}"
        "-- \n2.39.5\n"
    )
    return _mail(msgid, subject, text, in_reply_to, references, author, minutes)


def cover_mail(msgid: str, subject: str, *, minutes: float = 0,
               author: str = "Ann Author <ann@example.org>") -> bytes:
    return _mail(msgid, subject, "This series changes memcg charging.\n\n-- \n2.39.5\n",
                 None, None, author, minutes)


def reply_mail(msgid: str, parent: str, refs: list[str], subject: str, text: str, *,
               minutes: float = 0, author: str = "Rick Reviewer <rick@example.org>") -> bytes:
    return _mail(msgid, subject, text, parent, refs, author, minutes)


def _mail(msgid: str, subject: str, text: str, in_reply_to: str | None,
          references: list[str] | None, author: str, minutes: float) -> bytes:
    date = BASE_DATE + timedelta(minutes=minutes)
    head = [
        f"From: {author}",
        f"To: {LIST_ADDR}",
        f"Subject: {subject}",
        f"Date: {format_datetime(date)}",
        f"Message-ID: <{msgid}>",
    ]
    if in_reply_to:
        head.append(f"In-Reply-To: <{in_reply_to}>")
    if references:
        head.append("References: " + " ".join(f"<{r}>" for r in references))
    head += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
             "Content-Transfer-Encoding: 8bit"]
    return ("\n".join(head) + "\n\n" + text).encode()


def series_v1(minutes: float = 0) -> list[bytes]:
    """Cover + 2 patches; patch 2 takes a css reference it never drops."""
    c = "v1-cover@example.org"
    return [
        cover_mail(c, "[PATCH 0/2] mm: memcg: demo series", minutes=minutes),
        patch_mail("v1-p1@example.org", "[PATCH 1/2] mm: memcg: add a counter",
                   added=["\tmemcg->demo_counter++;"], in_reply_to=c, references=[c],
                   minutes=minutes + 1),
        patch_mail("v1-p2@example.org", "[PATCH 2/2] mm: memcg: pin the css",
                   added=["\tcss_get(&memcg->css);"], in_reply_to=c, references=[c],
                   minutes=minutes + 2, function="mem_cgroup_pin_demo", start=300),
    ]


@dataclass
class Inbox:
    """A real public-inbox v2 inbox in a temporary folder."""

    root: Path  # the inbox folder (git/0.git inside)
    home: Path  # HOME and PI_CONFIG of the public-inbox tools
    name: str = "test"

    @property
    def epoch(self) -> Path:
        return self.root / "git" / "0.git"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.home), "PI_CONFIG": str(self.home / "config"),
                "ORIGINAL_RECIPIENT": LIST_ADDR}

    def deliver(self, *mails: bytes) -> None:
        for raw in mails:
            subprocess.run(["public-inbox-mda", "--no-precheck"], input=raw, env=self.env,
                           check=True, capture_output=True, timeout=60)

    def head(self) -> str:
        return subprocess.run(["git", f"--git-dir={self.epoch}", "rev-parse", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()


def need_public_inbox() -> None:
    for tool in ("public-inbox-init", "public-inbox-mda", "public-inbox-httpd", "git"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (apt-get install public-inbox)")


def make_inbox(base: Path, name: str = "test") -> Inbox:
    need_public_inbox()
    home = base / "pi-home"
    home.mkdir(parents=True)
    inbox = Inbox(base / name, home, name)
    env = inbox.env
    subprocess.run(["public-inbox-init", "-V2", "-L", "basic", name, str(inbox.root),
                    f"http://127.0.0.1/{name}", LIST_ADDR], env=env, check=True,
                   capture_output=True, timeout=60)
    # Without this, public-inbox-mda wants spamc (architecture.md, measured).
    subprocess.run(["git", "config", "-f", env["PI_CONFIG"], "publicinboxmda.spamcheck",
                    "none"], env=env, check=True)
    return inbox


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Httpd:
    """public-inbox-httpd on loopback, serving INBOX at /NAME/ like lore."""

    def __init__(self, inbox: Inbox) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/{inbox.name}"
        self.proc = subprocess.Popen(
            ["public-inbox-httpd", "-l", f"http://127.0.0.1:{self.port}"],
            env=inbox.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"public-inbox-httpd exited: {err}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("public-inbox-httpd did not listen within 20 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def token_reviewer(tokens: dict[str, str],
                   seen: list[str] | None = None) -> Callable[[Series], SeriesReview]:
    """A reviewer that flags every added line containing one of TOKENS (token -> rule).

    It stands in for the rules engine where a test must control exactly which findings
    exist (to pin down "new" and "disappeared"); ``seen`` records reviewed series ids.
    """

    def review(series: Series) -> SeriesReview:
        if seen is not None:
            seen.append(series.series_id)
        findings = []
        for patch in series.patches:
            file, line, function = "", 0, None
            for text in (patch.message.diff or "").splitlines():
                if text.startswith("+++ b/"):
                    file = text[6:]
                elif text.startswith("@@"):
                    line = int(text.split("+", 1)[1].split(",")[0]) - 1
                    function = text.rsplit("@@", 1)[-1].strip().split("(")[0].split()[-1]
                elif text.startswith((" ", "+")):
                    line += 1
                    for token, rule in tokens.items():
                        if text.startswith("+") and token in text:
                            fp = hashlib.sha256(
                                f"{rule}|{file}|{function}|{text.strip()}".encode()
                            ).hexdigest()[:16]
                            findings.append(Finding(
                                rule=rule, severity="warning", confidence="high", file=file,
                                line=line, function=function, message=f"{token} flagged",
                                fingerprint=fp, evidence=(text[1:],),
                                patch_index=patch.index))
        outcome = StageOutcome("rules", "success", findings=findings)
        return SeriesReview(series, ReviewState(), [outcome])

    return review


def add_epoch(root: Path, number: int, mails: list[bytes]) -> Path:
    """A further epoch ``git/N.git`` as public-inbox starts one when the previous is full.

    public-inbox only rolls over at about 1 GB, far too much for a test, so the epoch is
    written with git fast-import; the layout (one commit per message, file ``m``) is the same.
    """
    epoch = root / "git" / f"{number}.git"
    subprocess.run(["git", "init", "-q", "--bare", str(epoch)], check=True)
    subprocess.run(["git", f"--git-dir={epoch}", "symbolic-ref", "HEAD", "refs/heads/master"],
                   check=True)
    append_to_epoch(epoch, mails)
    return epoch


def append_to_epoch(epoch: Path, mails: list[bytes]) -> None:
    """Commit each mail as the file ``m`` on top of the epoch's master."""
    has_tip = subprocess.run(["git", f"--git-dir={epoch}", "rev-parse", "-q", "--verify",
                              "refs/heads/master"], capture_output=True).returncode == 0
    stream = b""
    for i, raw in enumerate(mails):
        stream += (b"commit refs/heads/master\n"
                   + f"committer pi <pi@localhost> {1600000000 + i} +0000\n".encode()
                   + b"data 1\nm\n")
        if i == 0 and has_tip:
            # fast-import does not continue an existing branch unless told where from.
            stream += b"from refs/heads/master^0\n"
        stream += b"M 100644 inline m\n" + b"data %d\n" % len(raw) + raw + b"\n"
    subprocess.run(["git", f"--git-dir={epoch}", "fast-import", "--quiet"], input=stream,
                   check=True)
