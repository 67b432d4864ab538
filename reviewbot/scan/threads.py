"""The bounded buffer of open threads a scan groups mail in until a thread's window closes.

Threads are grouped by the rule series assembly uses (the first References entry;
unthreaded patches per author/version/total). The archive's clock is the newest plausible
Date seen; a Date from the future does not move it.
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from dataclasses import dataclass, field

from reviewbot.model import Message

FUTURE_SLACK_S = 7 * 86400  # a Date this far past the clock is a broken mailer, not time



@dataclass
class Thread:
    messages: list[Message] = field(default_factory=list)
    raws: list[tuple[str, bytes]] = field(default_factory=list)  # (source, zlib(raw))
    last: float = 0.0  # newest plausible date in the thread (POSIX seconds)
    seq: int = 0  # arrival number of its newest message


def _unthreaded_key(msg: Message) -> str | None:
    """Patches sent without any threading: same author, version and count belong together."""
    s = msg.subject
    if msg.diff is not None and not s.is_reply and s.total > 1 \
            and not msg.references and not msg.in_reply_to:
        return f"unthreaded:{msg.author_email.lower()}:v{s.version}:{s.total}"
    return None


def _starts_thread(msg: Message) -> bool:
    """Worth opening a thread for: a patch, or a mail that may be its cover letter.

    A cover need not say [PATCH]: "drive-by blk-cgroup cleanups" (hch, cgroups@ 2020-06-27)
    is a plain subject whose 14 patches reply to it; assembly adopts such a parent, so any
    mail that starts a thread is kept until its window closes.
    """
    s = msg.subject
    if s.is_reply:
        return False
    return msg.diff is not None or s.is_patch or (not msg.references and not msg.in_reply_to)


def _slim(msg: Message) -> Message:
    if msg.diff is None and msg.subject.is_reply:
        return dataclasses.replace(msg, body="", commit_message="")
    return msg


class Threads:
    """The bounded buffer of open threads.

    Threads are keyed by root Message-ID. Unthreaded patches of one series also share a
    thread through an alias ("unthreaded:author:vN:M"), and each one's own Message-ID is
    an alias too, since replies and later patches (shallow threading: "[PATCH 2/6]"
    answering "[PATCH 1/6]", alex.shi, cgroups@ 2020-08-11) name it as their root. Without
    the aliases the parts of one series could close at different times and be assembled
    apart.
    """

    def __init__(self, window_s: float, max_buffered: int, now: float | None = None) -> None:
        self.window_s = window_s
        self.max_buffered = max_buffered
        # A Date past the real present is a broken mailer or spam ("Date: 2037..."); were it
        # to set the clock, every later thread would close at once and series would split.
        self.now = time.time() if now is None else now
        self.threads: dict[str, Thread] = {}
        self.alias: dict[str, str] = {}  # root id or unthreaded key -> thread key
        self.aliases_of: dict[str, list[str]] = {}  # thread key -> its aliases
        self.buffered = 0
        self.peak = 0
        self.clock: float | None = None
        self.seq = 0

    def add(self, msg: Message, source: str, raw: bytes) -> None:
        root = msg.thread_root
        key = self.alias.get(root, root)
        unthreaded = _unthreaded_key(msg)
        if unthreaded is not None and unthreaded in self.alias:
            key = self.alias[unthreaded]
        thread = self.threads.get(key)
        if thread is None:
            if not _starts_thread(msg):
                return  # a reply to a closed or patch-less thread: nothing to review
            thread = self.threads[key] = Thread()
        if unthreaded is not None:
            self._alias(unthreaded, key)
            self._alias(msg.message_id, key)
        self.seq += 1
        stamp = _stamp(msg)
        if stamp is not None and stamp <= self.now + FUTURE_SLACK_S and (
                self.clock is None or stamp <= self.clock + FUTURE_SLACK_S):
            self.clock = stamp if self.clock is None else max(self.clock, stamp)
        thread.messages.append(_slim(msg))
        thread.raws.append((source, zlib.compress(raw, 1)))
        thread.last = max(thread.last, stamp if stamp is not None else (self.clock or 0.0))
        thread.seq = self.seq
        self.buffered += 1
        self.peak = max(self.peak, self.buffered)

    def _alias(self, name: str, key: str) -> None:
        if name != key and self.alias.get(name) != key:
            self.alias[name] = key
            self.aliases_of.setdefault(key, []).append(name)

    def close_due(self) -> list[Thread]:
        """Threads the clock has left behind, plus the oldest ones over the cap."""
        due: list[str] = []
        if self.clock is not None:
            limit = self.clock - self.window_s
            due = [b for b, t in self.threads.items() if t.last < limit]
        closed = [self._pop(b) for b in due]
        if self.buffered > self.max_buffered:
            for bucket in sorted(self.threads, key=lambda b: self.threads[b].seq):
                closed.append(self._pop(bucket))
                if self.buffered <= self.max_buffered // 2:
                    break
        return closed

    def close_all(self) -> list[Thread]:
        return [self._pop(b) for b in list(self.threads)]

    def _pop(self, bucket: str) -> Thread:
        thread = self.threads.pop(bucket)
        for name in self.aliases_of.pop(bucket, []):
            if self.alias.get(name) == bucket:
                del self.alias[name]
        self.buffered -= len(thread.messages)
        return thread


def _stamp(msg: Message) -> float | None:
    try:
        return msg.date.timestamp() if msg.date is not None else None
    except (OverflowError, OSError, ValueError):
        return None
