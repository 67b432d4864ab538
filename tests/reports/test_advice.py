"""Every finding says what to write instead and where to read about it: the rule's fix
hint and its references, printed as links a kernel developer can follow, once per rule."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from reportfixtures import make_finding, make_review

from reviewbot.config import ServiceSettings, Settings
from reviewbot.engine.loader import load_rules
from reviewbot.model import Finding, Reference, Series
from reviewbot.references import followable, rule_references
from reviewbot.report.json import review_json
from reviewbot.report.mail import render_replies
from reviewbot.report.text import render_review

SETTINGS = Settings(service=ServiceSettings(smtp_from="reviewbot <bot@ci.example.org>"))
RULES = Path(__file__).resolve().parents[2] / "rules"

HINT = ("Release on every exit path, typically with a `goto out_put` label before the common "
        "return; if the reference is meant to outlive the function, store it (or return it) "
        "on that path and say who drops it.")
LORE = "https://lore.kernel.org/r/20200614122653.98829-1-songmuchun@bytedance.com"
ELIXIR = "https://elixir.bootlin.com/linux/v6.1/source/mm/memcontrol.c#L1183"


def advised(finding: Finding, hint: str = HINT) -> Finding:
    refs = (Reference("commit", "mm: memcontrol: Fix do not put the css reference", LORE, LORE),
            Reference("source", "mem_cgroup_iter_break()", "mm/memcontrol.c:1183", ELIXIR))
    return dataclasses.replace(finding, fix_hint=hint, references=refs)


def _body(msg: object) -> str:
    return msg.get_content()  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize(("what", "where", "link"), [
    ("a review", "https://lore.kernel.org/r/20150526173822.GA31777@redhat.com",
     "https://lore.kernel.org/r/20150526173822.GA31777@redhat.com"),
    ("a review", "<20150526151149.GJ14681@dhcp22.suse.cz>",
     "https://lore.kernel.org/r/20150526151149.GJ14681@dhcp22.suse.cz"),
    # Starts with 14 hex digits, and is still a Message-ID, not a commit.
    ("a review", "20150526151149.GJ14681@dhcp22.suse.cz",
     "https://lore.kernel.org/r/20150526151149.GJ14681@dhcp22.suse.cz"),
    ("mm: optimize the redundant loop of mm_update_owner_next() (76ba6acfcce8): hard lockups",
     "76ba6acfcce8e5f2c39c0f2d2b9b2a4c0e1f0a11",
     'commit 76ba6acfcce8 ("mm: optimize the redundant loop of mm_update_owner_next()")'),
    ("the fix", '76ba6acfcce8 ("mm: optimize the redundant loop")',
     'commit 76ba6acfcce8 ("mm: optimize the redundant loop")'),
    # The quoted subject belongs to another commit: print the bare id rather than lie.
    ("Fixes: 0123456789ab (\"memcg: something else\")", "76ba6acfcce8",
     "commit 76ba6acfcce8"),
    ("mem_cgroup_iter_break() in 6.1", "mm/memcontrol.c:1183", ELIXIR),
    ("struct mm_struct", "include/linux/mm_types.h",
     "https://elixir.bootlin.com/linux/v6.1/source/include/linux/mm_types.h"),
])
def test_references_print_as_links_a_developer_can_follow(what: str, where: str,
                                                          link: str) -> None:
    assert followable(what, where) == link


@pytest.mark.parametrize("where", [
    "../shared/docs/memcg-primer.md",
    "../shared/seeds/seed-thread-mm-memcg-2018.txt",
    "docs/rules.md:12",  # this project's file, not the kernel's
    "R10",
])
def test_internal_references_are_not_printed(where: str) -> None:
    assert followable("memcg primer point 3 (R10)", where) is None


def test_rule_references_keep_order_drop_internal_and_repeats() -> None:
    refs = rule_references([
        {"kind": "doc", "what": "primer", "where": "../shared/docs/memcg-primer.md"},
        {"kind": "review", "what": "Oleg", "where": "<a.b@redhat.com>"},
        {"kind": "review", "what": "Oleg again", "where": "https://lore.kernel.org/r/a.b@redhat.com"},
        {"kind": "source", "what": "6.1", "where": "mm/memcontrol.c:1008"},
    ])
    assert [r.link for r in refs] == [
        "https://lore.kernel.org/r/a.b@redhat.com",
        "https://elixir.bootlin.com/linux/v6.1/source/mm/memcontrol.c#L1008",
    ]


def test_no_shipped_rule_prints_a_shared_path_or_a_relative_path() -> None:
    for rule in load_rules(RULES):
        for ref in rule_references(rule.references):
            assert ref.link.startswith(("https://", "commit ")), (rule.id, ref)
            assert "../" not in ref.link and "shared/" not in ref.link, (rule.id, ref)


def test_text_prints_fix_and_see_once_per_rule(series: Series) -> None:
    review = make_review(series, [
        advised(make_finding(2705, "\tcss_get(&memcg->css);")),
        advised(make_finding(2707, "\t\treturn 0;")),
        advised(make_finding(2709, "\tret = do_charge(memcg, nr_pages);", rule="other-rule"),
                hint="Do the other thing."),
    ])
    text = render_review(review)
    lines = text.splitlines()
    assert sum(1 for x in lines if x.strip().startswith("Fix: Release on every exit")) == 1
    assert sum(1 for x in lines if x.strip().startswith("Fix: Do the other thing.")) == 1
    assert lines.count(f"      See: {LORE}") == 2  # once for each of the two rules
    assert f"           {ELIXIR}" in lines
    # The advice follows the rule's first finding, before its second one.
    fix = next(i for i, x in enumerate(lines) if "Fix: Release" in x)
    first = next(i for i, x in enumerate(lines) if "mm/memcontrol.c:2705" in x)
    second = next(i for i, x in enumerate(lines) if "mm/memcontrol.c:2707" in x)
    assert first < fix < second


def test_text_without_advice_prints_no_fix_or_see(series: Series) -> None:
    text = render_review(make_review(series, [make_finding(2705, "\tcss_get(&memcg->css);")]))
    assert "Fix:" not in text and "See:" not in text


def test_mail_prints_advice_once_per_rule_per_reply_within_72_columns(series: Series) -> None:
    review = make_review(series, [
        advised(make_finding(2705, "\tcss_get(&memcg->css);")),
        advised(make_finding(2707, "\t\treturn 0; /* this return leaks the css reference "
                             "taken just above it */")),
        advised(make_finding(12, "c", patch_index=2)),
    ])
    to_p1, to_p2 = render_replies(review, SETTINGS)
    body = _body(to_p1)
    lines = body.splitlines()
    assert sum(1 for x in lines if x.startswith("Fix: ")) == 1
    assert lines.count(f"See: {LORE}") == 1
    assert lines.count(f"     {ELIXIR}") == 1
    fix = next(i for i, x in enumerate(lines) if x.startswith("Fix: "))
    assert lines[fix - 1] == ""  # its own paragraph
    assert fix < next(i for i, x in enumerate(lines) if "mm/memcontrol.c:2707" in x)
    for line in lines:
        if not line.startswith((">", "  reviewbot review", "See: ", "     https://")):
            assert len(line) <= 72, line
    # Another reply, another reader: the advice is given again there.
    assert f"See: {LORE}" in _body(to_p2).splitlines()


def test_json_findings_carry_optional_fix_hint_and_references(series: Series) -> None:
    plain = make_finding(2707, "\t\treturn 0;", rule="plain")
    review = make_review(series, [advised(make_finding(2705, "\tcss_get(&memcg->css);")), plain])
    doc = json.loads(json.dumps(review_json([review], [])))
    first, second = doc["series"][0]["patches"][0]["findings"]
    assert first["fix_hint"] == HINT
    assert first["references"][1] == {"kind": "source", "what": "mem_cgroup_iter_break()",
                                      "where": "mm/memcontrol.c:1183", "link": ELIXIR}
    assert "fix_hint" not in second and "references" not in second


def test_real_review_reply_gives_the_rules_fix_and_lore_links(series: Series) -> None:
    # The whole path: shipped rules -> rules stage -> reply. Patch 1 of the fixture leaks
    # the css reference on an early return.
    from reviewbot.pipeline import ReviewOptions, review_series

    review = review_series(series, Settings(), ReviewOptions(use_tree=False))
    leak = next(f for f in review.findings if f.rule == "refcount-imbalance")
    assert leak.fix_hint.startswith("Release on every exit path")
    body = _body(next(r for r in render_replies(review, SETTINGS)
                      if r["In-Reply-To"] == "<p1.v2@example.org>"))
    assert "\nFix: Release on every exit path" in body
    assert f"See: {LORE}" in body
    assert "../shared" not in body
    assert not re.search(r"\bR\d\d\b", body)  # the rule files' labels of review mails


def test_code_in_a_hint_stays_on_one_line_when_it_fits(series: Series) -> None:
    hint = ("Update per-mm state once per mm: iterate with cgroup_taskset_for_each_leader(), "
            "or guard the update with `if (!thread_group_leader(tsk)) continue;` / a same-mm "
            "check, or `do { memcg = obj_cgroup_memcg(objcg); } while (!css_tryget(&memcg->css"
            ")); /* far too long for one line of mail */`.")
    review = make_review(series, [advised(make_finding(2705, "\tcss_get(&memcg->css);"),
                                          hint=hint)])
    lines = _body(render_replies(review, SETTINGS)[0]).splitlines()
    fix = lines[next(i for i, x in enumerate(lines) if x.startswith("Fix: ")):]
    fix = fix[:fix.index(f"See: {LORE}")]
    assert any("`if (!thread_group_leader(tsk)) continue;`" in x for x in fix)
    assert all(len(x) <= 72 for x in fix), fix  # the span too long for a line is broken
    assert " ".join(fix).count("`do { memcg") == 1
