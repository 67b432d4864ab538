"""Parse large inputs on every CPU: the reader stays in this process, parsing moves out.

Raw messages are sent to worker processes in chunks, with a bounded number of chunks in
flight, so memory stays flat however large the archive is. Workers return messages already
reduced to what series assembly keeps (a reply's body is dropped) with the patch-id
computed, which is most of the per-message cost.
"""

from __future__ import annotations

import dataclasses
import os
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from reviewbot.config import MailSettings
from reviewbot.mail.patchid import patch_id
from reviewbot.mail.read import RawMessage
from reviewbot.model import InputError, Message

if TYPE_CHECKING:
    from concurrent.futures import Future

CHUNK = 128  # messages per task: large enough to amortise pickling
IN_FLIGHT_PER_WORKER = 3


def prepare(msg: Message, settings: MailSettings) -> Message:
    """What assembly keeps of a message (also done in-process; idempotent)."""
    from reviewbot.mail.series import is_cover, is_patch

    if is_patch(msg):
        pid = patch_id(msg.diff or "") if settings.compute_patch_id and msg.patch_id is None else msg.patch_id
        return dataclasses.replace(msg, body="", patch_id=pid)
    if is_cover(msg):
        return msg
    return dataclasses.replace(msg, body="", commit_message="", diff=None)


def _parse_chunk(chunk: list[RawMessage], settings: MailSettings) -> list[Message | InputError]:
    from reviewbot.mail.series import parse_raw

    out: list[Message | InputError] = []
    for raw in chunk:
        item = parse_raw(raw, settings)
        out.append(prepare(item, settings) if isinstance(item, Message) else item)
    return out


def workers_for(settings: MailSettings) -> int:
    jobs = settings.parse_jobs if settings.parse_jobs > 0 else (os.cpu_count() or 1)
    return max(1, jobs)


def parse_parallel(
    raws: Iterable[RawMessage | InputError], settings: MailSettings, jobs: int
) -> Iterator[Message | InputError]:
    """Parse in ``jobs`` processes, yielding results in input order."""
    # Imported here: most runs read a few mails and never start a pool (start-up counts).
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork: the workers inherit the imported modules, which start-up would otherwise redo.
    context = multiprocessing.get_context("fork")
    pending: deque[Future[list[Message | InputError]] | list[Message | InputError]] = deque()
    limit = jobs * IN_FLIGHT_PER_WORKER
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        chunk: list[RawMessage] = []

        def drain(keep: int) -> Iterator[Message | InputError]:
            while len(pending) > keep:
                head = pending.popleft()
                yield from head if isinstance(head, list) else head.result()

        for raw in raws:
            if isinstance(raw, InputError):
                if chunk:
                    pending.append(pool.submit(_parse_chunk, chunk, settings))
                    chunk = []
                pending.append([raw])
                continue
            chunk.append(raw)
            if len(chunk) >= CHUNK:
                pending.append(pool.submit(_parse_chunk, chunk, settings))
                chunk = []
                yield from drain(limit)
        if chunk:
            pending.append(pool.submit(_parse_chunk, chunk, settings))
        yield from drain(0)
