"""Rule references as a kernel developer can follow them.

A rule file cites its sources (``references``: kind, what, where; docs/rules.md). In a
reply to a patch only what the author can open counts:

* a URL as written;
* a Message-ID (``<id@host>``) as ``https://lore.kernel.org/r/<id>``;
* a commit id as ``commit <12 hex> ("subject")``, the way kernel changelogs cite commits,
  with the subject taken from the reference when it gives one, else the bare id;
* a ``path[:line]`` in the kernel tree as an Elixir link to Linux 6.1, the version the
  rules' source references are written against.

Anything else - a ``../shared/...`` document, a path outside the kernel's top-level
folders, a free-form label - is internal to this project and never printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from reviewbot.model import Reference

KERNEL_VERSION = "v6.1"  # docs/rules.md: `path:line` references are to Linux 6.1
LORE = "https://lore.kernel.org/r/"
ELIXIR = f"https://elixir.bootlin.com/linux/{KERNEL_VERSION}/source/"

# Top level of a Linux 6.1 tree (`git ls-tree --name-only v6.1`, dot files left out): a
# path elsewhere (docs/, rules/, ../shared/) is one of this project's files.
KERNEL_TOP = frozenset({
    "COPYING", "CREDITS", "Documentation", "Kbuild", "Kconfig", "LICENSES", "MAINTAINERS",
    "Makefile", "README", "arch", "block", "certs", "crypto", "drivers", "fs", "include",
    "init", "io_uring", "ipc", "kernel", "lib", "mm", "net", "rust", "samples", "scripts",
    "security", "sound", "tools", "usr", "virt",
})

_URL = re.compile(r"^https?://\S+$")
_MSGID = re.compile(r"^<([^<>\s]+@[^<>\s]+)>|^([^<>\s/]+@[^<>\s/]+)(?:\s|$)")
_COMMIT = re.compile(r"^(?:commit\s+)?([0-9a-f]{12,40})\b(.*)$", re.DOTALL)
_PATH = re.compile(r"^([\w+-][\w.+-]*(?:/[\w.+-]+)*)(?::(\d+))?(?:\s|$)")
_QUOTED_SUBJECT = re.compile(r'\("(.+?)"\)')


def followable(what: str, where: str) -> str | None:
    """The printable form of one reference, or None when a reader cannot follow it.

    The form follows from ``where`` alone, not from the reference's kind: a "review" may be
    cited by URL or by Message-ID, a "commit" by id or by its lore link.

    Args:
        what: the reference's description; gives a commit's subject.
        where: a URL, Message-ID, commit id, ``path[:line]`` or an internal path.
    Returns:
        A URL or ``commit <12 hex> ("subject")``; None for internal references.
    """
    where = where.strip()
    if _URL.match(where):
        return where
    # Message-IDs before commit ids: "20150526151149.GJ14681@dhcp22.suse.cz" starts with
    # 14 hex digits.
    m = _MSGID.match(where)
    if m:
        # lore wants the id as is, except for characters a URL path cannot carry.
        return LORE + quote(m.group(1) or m.group(2), safe="@+-._~!$&'()*,;=:")
    m = _COMMIT.match(where)
    if m:
        return _commit(m.group(1), m.group(2), what)
    m = _PATH.match(where)
    if m and m.group(1).split("/", 1)[0] in KERNEL_TOP:
        return ELIXIR + m.group(1) + (f"#L{m.group(2)}" if m.group(2) else "")
    return None


def _commit(sha: str, rest: str, what: str) -> str:
    """``commit abcdef012345 ("subject")``: the subject in quotes after the id (in
    ``where`` or ``what``), else the text of ``what`` before ``(<id>)``, else none."""
    q = _QUOTED_SUBJECT.search(rest) or re.search(
        rf'{sha[:12]}[0-9a-f]*\s*\("(.+?)"\)', what  # the subject of this id, not another's
    )
    subject = q.group(1) if q else None
    if subject is None:
        # "mm: fix the thing (0123456789ab): why it matters" names its own commit.
        m = re.search(rf"\(\s*(?:commit\s+)?{sha[:12]}[0-9a-f]*\s*\)", what)
        if m and what[: m.start()].strip():
            subject = what[: m.start()].strip().rstrip(":").strip()
    short = sha[:12]
    return f'commit {short} ("{subject}")' if subject else f"commit {short}"


def rule_references(refs: Iterable[Mapping[str, str]]) -> tuple[Reference, ...]:
    """The followable references of a rule, in the rule's order, without repeats."""
    out: list[Reference] = []
    seen: set[str] = set()
    for ref in refs:
        kind, what, where = (str(ref.get(k, "")) for k in ("kind", "what", "where"))
        link = followable(what, where)
        if link and link not in seen:
            seen.add(link)
            out.append(Reference(kind=kind, what=" ".join(what.split()), where=where, link=link))
    return tuple(out)
