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


# git's isspace() (sane_ctype in ctype.c): only these four bytes are whitespace, so a
# no-break space or a form feed in a diff is hashed as git hashes it.
_GIT_SPACE = b" \t\n\r"
_MOD = 1 << 160


def _sum(digests: list[bytes]) -> str:
    """The per-file SHA-1 digests added as little-endian 160-bit numbers ("--stable")."""
    total = sum(int.from_bytes(d, "little") for d in digests) % _MOD
    return total.to_bytes(20, "little").hex()


def _encode(text: str) -> bytes:
    """The bytes git would hash. Text decoded with surrogateescape gets its bytes back;
    any other lone surrogate (text from a codec such as utf-7, or handed in by an API
    caller) is hashed as its UTF-8-style three bytes instead of failing the whole read."""
    try:
        return text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="surrogatepass")


def _squeeze(text: str) -> bytes:
    return _encode(text).translate(None, _GIT_SPACE)


# Both behind a literal newline, not "^" with MULTILINE: Python's re tries a "^" pattern at
# every byte, which cost more than the rest of the patch-id. The skipped lines are cut
# without their own newline but with the one before: newlines are squeezed out anyway.
_SECTION_RE = re.compile(rb"\ndiff ")
_SKIPPED_LINE_RE = re.compile(rb"\n(?:index |@@ |\\ )[^\n]*")
# In the hunks of a file only these may start a line; anything else ("-- ", junk, an empty
# line from a mailer that ate trailing blanks) needs git's line-counting walk.
_ODD_HUNK_LINE_RE = re.compile(rb"\n[^ +\-@\\\n]")  # the tail starts at "@@"


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
    data = _encode(diff)
    starts = [0, *(m.start() + 1 for m in _SECTION_RE.finditer(data)), len(data)]
    digests = []
    for begin, end in zip(starts, starts[1:], strict=False):
        section = data[begin:end]
        hunks = section.find(b"\n@@ ")
        if hunks < 0:
            # No hunk (rename, mode change): git hashes it together with the next file,
            # a subtlety left to the walk.
            return None
        tail = section[hunks + 1 :].rstrip(b"\n")
        if _ODD_HUNK_LINE_RE.search(tail) or b"\n\n" in tail:
            return None
        text = _SKIPPED_LINE_RE.sub(b"", section).translate(None, _GIT_SPACE)
        digests.append(hashlib.sha1(text).digest())
    return _sum(digests)


def _patch_id_walk(diff: str) -> str | None:
    """git's builtin/patch-id.c get_one_patchid(), line by line."""
    digests: list[bytes] = []
    patchlen = 0
    before = after = -1
    binary = False
    pre_oid = post_oid = ""
    pending: list[bytes] = []  # hashed once per file: per-line updates cost more

    def flush() -> None:
        digests.append(hashlib.sha1(b"".join(pending)).digest())
        pending.clear()

    for line in diff.split("\n"):
        if line.startswith("\\ ") and len(line) > 11:
            continue  # "\ No newline at end of file"
        if not patchlen and not line.startswith("diff "):
            continue
        if before == -1:
            if line.startswith(("GIT binary patch", "Binary files")):
                binary = True
                before = 0
                pending.append(_squeeze(pre_oid + post_oid))
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
        stripped = _squeeze(line)
        patchlen += len(stripped)
        pending.append(stripped)
    if not patchlen:
        return None
    flush()
    return _sum(digests)
