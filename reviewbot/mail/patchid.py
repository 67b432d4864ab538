"""``git patch-id --stable`` computed in Python.

Spawning git once per patch costs about 3 ms, more than parsing the whole mail, so the
algorithm of git's builtin/patch-id.c is reproduced here and checked against git itself in
tests/mail/test_patchid.py: each file's diff is hashed with all whitespace removed and line
numbers of hunk headers ignored, and the per-file SHA-1 digests are added as little-endian
160-bit numbers (that sum is what makes the id independent of file order, "--stable").
"""

from __future__ import annotations

import hashlib
import re

_HUNK_RE = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def _add(total: bytearray, digest: bytes) -> None:
    carry = 0
    for i in range(len(total)):
        carry += total[i] + digest[i]
        total[i] = carry & 0xFF
        carry >>= 8


_SECTION_RE = re.compile(r"^diff ", re.MULTILINE)
_SKIPPED_LINE_RE = re.compile(r"^(?:index |@@ |\\ ).*\n?", re.MULTILINE)
# In the hunks of a file only these may start a line; anything else ("-- ", junk, an empty
# line from a mailer that ate trailing blanks) needs git's line-counting walk.
_ODD_HUNK_LINE_RE = re.compile(r"^(?![ +\-@\\]).", re.MULTILINE)


def patch_id(diff: str) -> str | None:
    """Return the stable patch-id of a unified diff, or None when it holds no change.

    Well-formed git diffs take a fast path (a file's text minus index and hunk-header
    lines, all whitespace removed, hashed at once); anything unusual takes the line walk
    that mirrors git exactly. Both are checked against git in the tests.
    """
    fast = _patch_id_fast(diff)
    return fast if fast is not None else _patch_id_walk(diff)


def _patch_id_fast(diff: str) -> str | None:
    if not diff.startswith("diff --git ") or "GIT binary patch" in diff or "Binary files" in diff:
        return None
    starts = [m.start() for m in _SECTION_RE.finditer(diff)] + [len(diff)]
    total = bytearray(20)
    for begin, end in zip(starts, starts[1:], strict=False):
        section = diff[begin:end]
        hunks = section.find("\n@@ ")
        if hunks < 0:
            # No hunk (rename, mode change): git hashes it together with the next file,
            # a subtlety left to the walk.
            return None
        tail = section[hunks + 1 :].rstrip("\n")
        if _ODD_HUNK_LINE_RE.search(tail) or "\n\n" in tail:
            return None
        text = "".join(_SKIPPED_LINE_RE.sub("", section).split())
        _add(total, hashlib.sha1(text.encode("utf-8", errors="surrogateescape")).digest())
    return bytes(total).hex()


def _patch_id_walk(diff: str) -> str | None:
    """git's builtin/patch-id.c get_one_patchid(), line by line."""
    total = bytearray(20)
    ctx = hashlib.sha1()
    patchlen = 0
    before = after = -1
    binary = False
    pre_oid = post_oid = ""
    pending: list[str] = []  # hashed in one update per file: per-line updates cost more

    def flush() -> None:
        nonlocal ctx
        ctx.update("".join(pending).encode("utf-8", errors="surrogateescape"))
        pending.clear()
        _add(total, ctx.digest())
        ctx = hashlib.sha1()

    for line in diff.split("\n"):
        if line.startswith("\\ ") and len(line) > 11:
            continue  # "\ No newline at end of file"
        if not patchlen and not line.startswith("diff "):
            continue
        if before == -1:
            if line.startswith(("GIT binary patch", "Binary files")):
                binary = True
                before = 0
                pending.append(pre_oid + post_oid)
                flush()
                continue
            if line.startswith("index "):
                oids = line[6:].split(" ", 1)[0].rstrip("\n")
                pre_oid, _, post_oid = oids.partition("..")
                continue
            if line.startswith("--- "):
                before = after = 1
            elif not line[:1].isalpha():
                break
        if binary:
            if line.startswith("diff "):
                binary = False
                before = -1
            else:
                continue
        if before == 0 and after == 0:
            hunk = _HUNK_RE.match(line)
            if hunk:
                before = int(hunk.group(1)) if hunk.group(1) is not None else 1
                after = int(hunk.group(2)) if hunk.group(2) is not None else 1
                continue
            if not line.startswith("diff "):
                break
            flush()
            before = after = -1
        if line[:1] in ("-", " "):
            before -= 1
        if line[:1] in ("+", " "):
            after -= 1
        stripped = "".join(line.split())
        patchlen += len(stripped)
        pending.append(stripped)
    if not patchlen:
        return None
    flush()
    return bytes(total).hex()
