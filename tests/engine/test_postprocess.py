"""A series judged as a reviewer would: one finding per construct, a problem a later patch
of the series fixes reported once as a bisection hazard, and each rule's advice attached."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from reviewbot.config import Settings
from reviewbot.engine.loader import load_rules
from reviewbot.engine.postprocess import (
    PREEXISTING_PREFIX,
    FunctionChange,
    final_state,
    function_changes,
    merge_duplicates,
    with_advice,
)
from reviewbot.engine.stage import rules_stage
from reviewbot.mail import read_series
from reviewbot.model import Finding
from reviewbot.pipeline import ReviewOptions, ReviewState

RULES = Path(__file__).resolve().parents[2] / "rules"
FILE = "mm/x.c"


def finding(line: int, evidence: tuple[str, ...], *, rule: str = "refcount-imbalance",
            severity: str = "error", patch: int = 1, function: str = "charge_one",
            message: str | None = None, partial: bool = True,
            preexisting: bool = False) -> Finding:
    if message is None:
        message = (f"the css reference taken by css_get() at line 14 is still held when "
                   f"{function}() returns at line {line}")
    return Finding(rule=rule, severity=severity, confidence="moderate", file=FILE, line=line,
                   function=function, message=message, fingerprint=f"fp{line}",
                   evidence=evidence, partial=partial, preexisting=preexisting,
                   patch_index=patch)


GET = "\tcss_get(&memcg->css);"

# -- one finding per construct ------------------------------------------------------------


def test_leaks_of_one_acquire_on_several_paths_merge_into_the_most_severe() -> None:
    merged = merge_duplicates([
        finding(16, (GET, "\t\treturn 0;"), severity="warning"),
        finding(18, (GET, "\t\treturn 2;")),
        finding(22, (GET, "\treturn 1;"), severity="info", preexisting=True),
    ])
    assert len(merged) == 1
    (kept,) = merged
    assert kept.severity == "error" and kept.line == 18
    assert kept.message.endswith("returns at line 18 (also at lines 16, 22)")
    assert kept.evidence == (GET, "\t\treturn 2;")


def test_one_other_line_is_singular_and_a_lone_finding_is_untouched() -> None:
    lone = finding(30, ("\tcss_get(&other->css);", "\treturn 1;"))
    merged = merge_duplicates([finding(16, (GET, "a")), finding(18, (GET, "b")), lone])
    assert merged[0].message.endswith("(also at line 18)")
    assert merged[1] is lone
    sentence = dataclasses.replace(finding(16, (GET,)), message="Leaks on this path.")
    (merged_sentence,) = merge_duplicates([sentence, dataclasses.replace(sentence, line=18)])
    assert merged_sentence.message == "Leaks on this path. Also at line 18."


def test_different_rules_patches_and_constructs_stay_apart() -> None:
    findings = [
        finding(16, (GET,)),
        finding(16, (GET,), rule="css-get-under-rcu"),  # another rule: its own advice
        finding(16, (GET,), patch=2),  # another patch: another reply
        finding(17, ("  css_get(&memcg->css);  ", "x")),  # spaces do not make it new
        finding(20, ("\tcss_get(&parent->css);",)),
    ]
    merged = merge_duplicates(findings)
    assert [(f.rule, f.patch_index, f.line) for f in merged] == [
        ("refcount-imbalance", 1, 16), ("css-get-under-rcu", 1, 16),
        ("refcount-imbalance", 2, 16), ("refcount-imbalance", 1, 20),
    ]
    assert merged[0].message.endswith("(also at line 17)")


def test_findings_without_evidence_merge_by_line() -> None:
    a = finding(40, (), rule="mm-owner-leftovers", message="still used")
    b = dataclasses.replace(a, message="still used, again")
    assert len(merge_duplicates([a, b])) == 1
    assert len(merge_duplicates([a, dataclasses.replace(b, line=41)])) == 2


# -- advice --------------------------------------------------------------------------------


def test_advice_comes_from_the_rule_and_only_followable_references() -> None:
    rules = load_rules(RULES)
    by_id = {r.id: r for r in rules}
    (leak, other) = with_advice([finding(16, (GET,)), finding(16, (GET,), rule="no-such-rule")],
                                rules)
    assert leak.fix_hint == " ".join(by_id["refcount-imbalance"].fix_hint.split())
    assert leak.references and all(r.link.startswith("https://") for r in leak.references)
    assert other.fix_hint == "" and other.references == ()
    internal = dataclasses.replace(by_id["refcount-imbalance"], references=(
        {"kind": "doc", "what": "memcg primer point 1", "where": "../shared/docs/memcg-primer.md"},
    ))
    (unlinked,) = with_advice([finding(16, (GET,))], [internal])
    assert unlinked.fix_hint and unlinked.references == ()


# -- the series' final state ------------------------------------------------------------------

SHOWN = frozenset({"css_get(&memcg->css);", "return 0;"})


def test_a_fix_in_a_later_patch_makes_a_bisection_hazard_not_a_warning() -> None:
    f = finding(16, (GET, "\t\treturn 0;"))
    changes = {2: {(FILE, "charge_one"): FunctionChange(frozenset({"return 0;"}), SHOWN)}}
    (hazard,) = final_state([f], changes)
    assert hazard.severity == "info" and hazard.patch_index == 1
    assert hazard.message.startswith("bisection hazard, fixed by patch 2 of this series")
    assert hazard.message.endswith(f.message)
    assert "Fold the fix from patch 2 into patch 1" in hazard.fix_hint
    assert hazard.fingerprint == f.fingerprint


def test_hunks_that_do_not_show_the_construct_are_not_a_fix() -> None:
    # Hunks mode: patch 2 edits the end of the function; its hunks show neither the
    # css_get() nor the return, so its silence says nothing.
    f = finding(16, (GET, "\t\treturn 0;"))
    elsewhere = FunctionChange(frozenset({"count_four(memcg);"}),
                               frozenset({"count_four(memcg);", "return 1;"}))
    assert final_state([f], {2: {(FILE, "charge_one"): elsewhere}}) == [f]
    # With whole functions (tree mode) the same silence is conclusive.
    whole = dataclasses.replace(f, partial=False)
    assert final_state([whole], {2: {(FILE, "charge_one"): elsewhere}})[0].severity == "info"
    # Hunks that show every evidence line (the fix only adds a css_put()) are enough.
    shown = FunctionChange(frozenset({"if (consume_stock(memcg))"}), SHOWN)
    assert final_state([f], {2: {(FILE, "charge_one"): shown}})[0].severity == "info"


def test_removing_the_construct_is_a_fix_removing_a_common_exit_line_is_not() -> None:
    f = finding(16, (GET, "\t\treturn 0;"))
    no_get = FunctionChange(frozenset({"css_get(&memcg->css);"}),
                            frozenset({"css_get(&memcg->css);"}))
    assert final_state([f], {2: {(FILE, "charge_one"): no_get}})[0].severity == "info"
    # Another `return 0;` of the function goes; the css_get() is not even in the hunk.
    other_return = FunctionChange(frozenset({"return 0;"}), frozenset({"return 0;", "x = 1;"}))
    assert final_state([f], {2: {(FILE, "charge_one"): other_return}}) == [f]


def test_a_later_patch_of_another_function_fixes_nothing() -> None:
    f = finding(16, (GET, "\t\treturn 0;"))
    other = {2: {(FILE, "other_function"): FunctionChange(frozenset({"return 0;"}), SHOWN)}}
    assert final_state([f], other) == [f]


def test_still_there_in_the_final_state_is_not_a_hazard() -> None:
    f = finding(16, (GET, "\t\treturn 0;"))
    fix = FunctionChange(frozenset({"return 0;"}), SHOWN)
    again = finding(19, (GET, "\t\treturn 0;"), patch=3)  # patch 3 brings it back
    changes = {2: {(FILE, "charge_one"): fix}, 3: {(FILE, "charge_one"): fix}}
    assert final_state([f, again], changes) == [f, again]


def test_the_problem_seen_again_before_the_fix_is_reported_once() -> None:
    # Patch 2 touches the function and still has the leak (pre-existing there, since patch
    # 1 made it); patch 3 fixes it. One finding: the hazard on patch 1.
    f = finding(16, (GET, "\t\treturn 0;"))
    seen_again = finding(17, (GET, "\t\treturn 0;"), patch=2, severity="info", preexisting=True,
                         message=PREEXISTING_PREFIX + f.message.replace("16", "17"))
    fix = FunctionChange(frozenset({"return 0;"}), SHOWN)
    changes = {2: {(FILE, "charge_one"): FunctionChange(frozenset({"x"}), SHOWN)},
               3: {(FILE, "charge_one"): fix}}
    (hazard,) = final_state([f, seen_again], changes)
    assert hazard.patch_index == 1 and "fixed by patch 3" in hazard.message


# -- end to end: series mails through the rules stage -----------------------------------------

SIG = "static int charge_one(struct mem_cgroup *memcg)"

PATCH_1 = f"""\
--- a/mm/x.c
+++ b/mm/x.c
@@ -9,3 +9,16 @@ static int old(void)
 \treturn 0;
 }}
\x20
+{SIG}
+{{
+\tcss_get(&memcg->css);
+\tif (consume_stock(memcg))
+\t\treturn 0;
+\tif (try_other(memcg))
+\t\treturn 2;
+\tcount_one(memcg);
+\tcount_two(memcg);
+\tcount_three(memcg);
+\tcss_put(&memcg->css);
+\treturn 1;
+}}
"""

# Puts the reference on both early returns.
PATCH_FIX = f"""\
--- a/mm/x.c
+++ b/mm/x.c
@@ -12,10 +12,14 @@ static int old(void)
 {SIG}
 {{
 \tcss_get(&memcg->css);
-\tif (consume_stock(memcg))
-\t\treturn 0;
-\tif (try_other(memcg))
-\t\treturn 2;
+\tif (consume_stock(memcg)) {{
+\t\tcss_put(&memcg->css);
+\t\treturn 0;
+\t}}
+\tif (try_other(memcg)) {{
+\t\tcss_put(&memcg->css);
+\t\treturn 2;
+\t}}
 \tcount_one(memcg);
 \tcount_two(memcg);
 \tcount_three(memcg);
"""

# Edits the end of the same function only: its hunk shows no part of the leak.
PATCH_TAIL = f"""\
--- a/mm/x.c
+++ b/mm/x.c
@@ -19,6 +19,6 @@ {SIG}
 \tcount_one(memcg);
 \tcount_two(memcg);
 \tcount_three(memcg);
-\tcss_put(&memcg->css);
+\tcss_put(&memcg->css); /* done */
 \treturn 1;
 }}
"""


def series_mbox(tmp_path: Path, *diffs: str) -> Path:
    """A threaded series of patch mails (no cover letter), one per diff, as an mbox."""
    mails = []
    total = len(diffs)
    for n, diff in enumerate(diffs, start=1):
        thread = "" if n == 1 else "In-Reply-To: <p1@example.org>\nReferences: <p1@example.org>\n"
        mails.append(
            "From mboxrd@z Thu Jan  1 00:00:00 1970\n"
            "From: Ann Author <ann@example.org>\n"
            f"Subject: [PATCH {n}/{total}] mm: charge step {n}\n"
            f"Date: Mon, 1 Jun 2020 10:0{n}:00 +0000\n"
            f"Message-ID: <p{n}@example.org>\n{thread}\n"
            f"Step {n}.\n\nSigned-off-by: Ann Author <ann@example.org>\n---\n"
            f"diff --git a/mm/x.c b/mm/x.c\n{diff}\n"
        )
    path = tmp_path / "series.mbox"
    path.write_text("".join(mails))
    return path


def review(path: Path):  # type: ignore[no-untyped-def]
    (series,) = read_series([path], Settings()).series
    return rules_stage(series, ReviewState(), Settings(), ReviewOptions(use_tree=False))


def leaks(outcome) -> list[Finding]:  # type: ignore[no-untyped-def]
    return [f for f in outcome.findings if f.rule == "refcount-imbalance"]


def test_one_leak_reached_by_two_returns_is_one_finding(tmp_path: Path) -> None:
    (leak,) = leaks(review(series_mbox(tmp_path, PATCH_1)))
    assert leak.severity == "error" and leak.patch_index == 1
    assert "css_get(&memcg->css);" in leak.evidence[0]
    assert leak.line == 16 and leak.message.endswith(". Also at line 18.")  # return 0, 2
    assert leak.fix_hint.startswith("Release on every exit path")


def test_a_leak_fixed_by_the_next_patch_is_an_info_bisection_hazard(tmp_path: Path) -> None:
    outcome = review(series_mbox(tmp_path, PATCH_1, PATCH_FIX))
    (hazard,) = leaks(outcome)
    assert hazard.patch_index == 1 and hazard.severity == "info"
    assert hazard.message.startswith("bisection hazard, fixed by patch 2 of this series")
    assert hazard.message.endswith(". Also at line 18.")  # still one finding for both returns
    assert "Fold the fix from patch 2 into patch 1" in hazard.fix_hint
    assert outcome.status == "success"  # nothing at warning or above is left


def test_a_later_patch_that_does_not_show_the_leak_does_not_fix_it(tmp_path: Path) -> None:
    outcome = review(series_mbox(tmp_path, PATCH_1, PATCH_TAIL))
    (leak,) = [f for f in leaks(outcome) if f.patch_index == 1]
    assert leak.severity == "error" and "bisection" not in leak.message
    assert outcome.status == "warning"


def test_function_changes_name_functions_as_the_engines_do() -> None:
    from reviewbot.diff import parse_diff

    fix = function_changes(parse_diff("diff --git a/mm/x.c b/mm/x.c\n" + PATCH_FIX))
    assert set(fix) == {(FILE, "charge_one")}
    assert fix[(FILE, "charge_one")].removed == {"if (consume_stock(memcg))", "return 0;",
                                                 "if (try_other(memcg))", "return 2;"}
    assert "css_get(&memcg->css);" in fix[(FILE, "charge_one")].shown
    tail = function_changes(parse_diff("diff --git a/mm/x.c b/mm/x.c\n" + PATCH_TAIL))
    assert "css_get(&memcg->css);" not in tail[(FILE, "charge_one")].shown
