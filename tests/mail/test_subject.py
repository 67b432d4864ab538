from __future__ import annotations

import pytest

from reviewbot.mail.subject import parse_subject, rebuild_subject

# raw subject -> (subject, version, version_inferred, index, total, counters_inferred,
#                 is_reply, rfc, resend, extra prefixes)
CASES = [
    ("[PATCH] memcg: x", ("memcg: x", 1, True, 1, 1, True, False, False, False, ())),
    ("[RFC][PATCH] memcg: x", ("memcg: x", 1, True, 1, 1, True, False, True, False, ("RFC",))),
    ("[RFC PATCH v2 3/7] memcg: x", ("memcg: x", 2, False, 3, 7, False, False, True, False, ("RFC",))),
    ("[PATCH -mm] memcg: x", ("memcg: x", 1, True, 1, 1, True, False, False, False, ("-mm",))),
    ("[-mm] Add an owner to the mm_struct (v7)",
     ("Add an owner to the mm_struct (v7)", 1, True, 1, 1, True, False, False, False, ("-mm",))),
    ("[PATCH for-5.2-fixes] cgroup: x",
     ("cgroup: x", 1, True, 1, 1, True, False, False, False, ("for-5.2-fixes",))),
    ("[PATCH cgroup/for-5.2-fixes] cgroup: x",
     ("cgroup: x", 1, True, 1, 1, True, False, False, False, ("cgroup/for-5.2-fixes",))),
    ("[PATCH net-next v3 00/12] net: x",
     ("net: x", 3, False, 0, 12, False, False, False, False, ("net-next",))),
    ("[PATCHv2 1/3] mm: x", ("mm: x", 2, False, 1, 3, False, False, False, False, ())),
    ("PATCH1/8 mm: x", ("mm: x", 1, True, 1, 8, False, False, False, False, ())),
    ("[RESEND PATCH] mm: x", ("mm: x", 1, True, 1, 1, True, False, False, True, ("RESEND",))),
    ("[PATCH RESEND v2] mm: x", ("mm: x", 2, False, 1, 1, True, False, False, True, ("RESEND",))),
    ("[PATCH 3.16 130/136] mm: memcg: x",
     ("mm: memcg: x", 1, True, 130, 136, False, False, False, False, ("3.16",))),
    ("Re: [PATCH v2 2/2] mm: x", ("mm: x", 2, False, 2, 2, False, True, False, False, ())),
    ("[PATCH v2 RFC 1/2] mm: x", ("mm: x", 2, False, 1, 2, False, False, True, False, ("RFC",))),
    ("RE: Re: [PATCH] mm: x", ("mm: x", 1, True, 1, 1, True, True, False, False, ())),
    ("Aw: [PATCH V3 2/4] mm: x", ("mm: x", 3, False, 2, 4, False, True, False, False, ())),
    ("[PATCH 1/2 v2] mm: x", ("mm: x", 2, False, 1, 2, False, False, False, False, ())),
    ("[RFC] [PATCH 2/3] mm: x", ("mm: x", 1, True, 2, 3, False, False, True, False, ("RFC",))),
    ("[PATCH v3 -next] mm: x", ("mm: x", 3, False, 1, 1, True, False, False, False, ("-next",))),
    ("mm: no prefix at all", ("mm: no prefix at all", 1, True, 1, 1, True, False, False, False, ())),
]


@pytest.mark.parametrize(("raw", "expected"), CASES, ids=[c[0] for c in CASES])
def test_subject_forms_seen_on_the_lists(raw: str, expected: tuple[object, ...]) -> None:
    s = parse_subject(raw)
    got = (
        s.subject, s.version, s.version_inferred, s.index, s.total, s.counters_inferred,
        s.is_reply, s.is_rfc, s.is_resend,
        tuple(p for p in s.prefixes if p.lower() not in ("patch", "rfc", "resend")) if False
        else tuple(p for p in s.prefixes if p.upper() != "PATCH"),
    )
    assert got == expected


def test_patch_prefix_is_recorded() -> None:
    assert parse_subject("[PATCH] x").is_patch
    assert not parse_subject("[GIT PULL] cgroup changes").is_patch


def test_folded_whitespace_is_squeezed() -> None:
    assert parse_subject("[PATCH v3\n 2/5] memcg:   folded").subject == "memcg: folded"


def test_rebuild_keeps_rfc_and_pads_counter() -> None:
    s = parse_subject("[RFC PATCH v2 3/12] memcg: x")
    assert rebuild_subject(s) == "[PATCH RFC v2 03/12] memcg: x"
