"""A patch that does not apply, placed on the nearest base by its hunks' context."""

from __future__ import annotations

from reviewbot.config import MailSettings
from reviewbot.diff import parse_diff
from reviewbot.engine.rebuild import rebuild, rebuilt_views

BASE = "\n".join([
    "#include <linux/x.h>",
    "",
    "static int helper(void)",
    "{",
    "\treturn 1;",
    "}",
    "",
    "int target(struct obj *o)",
    "{",
    "\tint ret;",
    "",
    "\tspin_lock(&o->lock);",
    "\tret = helper();",
    "\to->count++;",
    "\tspin_unlock(&o->lock);",
    "\treturn ret;",
    "}",
    "",
]) + "\n"

# The author's tree had 41 more lines above: the hunk says 53, the base has it at 12.
PATCH = """\
diff --git a/kernel/x.c b/kernel/x.c
index 1111111..2222222 100644
--- a/kernel/x.c
+++ b/kernel/x.c
@@ -53,6 +53,7 @@ int target(struct obj *o)
 \tspin_lock(&o->lock);
 \tret = helper();
 \to->count++;
+\tmsleep(10);
 \tspin_unlock(&o->lock);
 \treturn ret;
 }
"""


def fd():  # type: ignore[no-untyped-def]
    (one,) = parse_diff(PATCH, MailSettings())
    return one


def test_a_hunk_is_placed_by_its_context_and_keeps_the_patch_line_numbers() -> None:
    result = rebuild(fd(), BASE)
    assert result.placed and not result.missed
    lines = result.text.split("\n")
    row = lines.index("\tmsleep(10);")
    assert result.line_of_row[row] == 56  # the patch's own number, not the base's 15
    # A base line above the hunk is numbered back from it: target() starts at 49.
    assert result.line_of_row[lines.index("int target(struct obj *o)")] == 49


def test_the_whole_function_around_the_hunk_is_read() -> None:
    rebuilt = rebuilt_views(fd(), BASE)
    assert rebuilt is not None
    (view,), _, _ = rebuilt
    assert view.name == "target" and not view.partial
    assert {49, 50, 51, 56, 59} <= view.line_set()  # signature and `int ret;` from the base
    assert 56 in view.added


def test_a_hunk_whose_context_is_not_in_the_base_is_left_out() -> None:
    other = BASE.replace("\to->count++;", "\to->total++;")
    assert rebuilt_views(fd(), other) is None


def test_context_that_changed_at_the_edges_is_fuzz() -> None:
    # The base took spin_lock_irq() since: the first context line differs, as GNU patch
    # would accept with fuzz 1; the hunk lands in the same place.
    other = BASE.replace("\tspin_lock(&o->lock);", "\tspin_lock_irq(&o->lock);")
    result = rebuild(fd(), other)
    assert result.placed and not result.missed
    lines = result.text.split("\n")
    assert lines.count("\tmsleep(10);") == 1 and "\tspin_lock_irq(&o->lock);" in lines
    assert lines.index("\tmsleep(10);") == lines.index("\to->count++;") + 1
    assert result.line_of_row[lines.index("\tmsleep(10);")] == 56
    # A change in the middle of the context is not fuzz: the hunk stays out.
    assert rebuilt_views(fd(), BASE.replace("\to->count++;", "\to->total++;")) is None


def test_a_hunk_already_in_the_base_is_read_there() -> None:
    applied = BASE.replace("\to->count++;\n", "\to->count++;\n\tmsleep(10);\n")
    result = rebuild(fd(), applied)
    assert result.placed and not result.missed
    assert result.text == applied  # nothing to change: the base has the post-image
    rebuilt = rebuilt_views(fd(), applied)
    assert rebuilt is not None
    (view,), _, _ = rebuilt
    assert view.name == "target" and 56 in view.added


LOOSE_BASE = "\n".join([
    "int charge(struct mem_cgroup *memcg, unsigned int nr_pages)",
    "{",
    "\tunsigned long usage;",
    "\tint retries = MAX_RECLAIM_RETRIES;",
    "",
    "\tif (consume_stock(memcg, nr_pages))",
    "\t\treturn 0;",
    "\tusage = page_counter_read(&memcg->memory);",
    "\tif (usage > memcg->high_limit)",  # the author's tree called it memcg->high
    "\t\tschedule_work(&memcg->high_work);",
    "\tpage_counter_charge(&memcg->memory, nr_pages);",
    "\tcss_get_many(&memcg->css, nr_pages);",
    "\treturn 0;",
    "}",
    "",
]) + "\n"

# Written on a tree where the field was memcg->high: the middle context line differs, so
# neither git apply nor fuzz takes it; a reviewer still sees where it goes.
LOOSE_PATCH = """\
diff --git a/mm/memcontrol.c b/mm/memcontrol.c
index 1111111..2222222 100644
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -2400,9 +2400,10 @@ int charge(struct mem_cgroup *memcg, unsigned int nr_pages)
 \tif (consume_stock(memcg, nr_pages))
 \t\treturn 0;
 \tusage = page_counter_read(&memcg->memory);
 \tif (usage > memcg->high)
 \t\tschedule_work(&memcg->high_work);
+\tcss_get(&memcg->css);
 \tpage_counter_charge(&memcg->memory, nr_pages);
 \tcss_get_many(&memcg->css, nr_pages);
 \treturn 0;
 }
"""


def test_context_the_base_rewrote_in_places_is_placed_loosely() -> None:
    (one,) = parse_diff(LOOSE_PATCH, MailSettings())
    result = rebuild(one, LOOSE_BASE)
    assert result.placed and not result.missed
    lines = result.text.split("\n")
    assert lines.count("\tcss_get(&memcg->css);") == 1
    # The hunk's lines replace the stretch they match: the author's context, in order.
    assert lines.index("\tcss_get(&memcg->css);") == lines.index(
        "\t\tschedule_work(&memcg->high_work);") + 1
    # The rest of the function comes from the base, so the function is read whole.
    rebuilt = rebuilt_views(one, LOOSE_BASE)
    assert rebuilt is not None
    (view,), _, _ = rebuilt
    assert view.name == "charge"
    added_row = lines.index("\tcss_get(&memcg->css);")
    assert result.line_of_row[added_row] in view.added
    assert "\tint retries = MAX_RECLAIM_RETRIES;" in lines  # a base line outside the hunk


def test_context_mostly_not_in_the_base_is_not_placed_loosely() -> None:
    (one,) = parse_diff(LOOSE_PATCH, MailSettings())
    other = LOOSE_BASE
    for old, new in (("consume_stock", "refill_stock"), ("page_counter_read", "mem_usage"),
                     ("schedule_work", "queue_work_on"), ("css_get_many", "css_put_many")):
        other = other.replace(old, new)
    assert rebuilt_views(one, other) is None


def test_context_that_locks_differently_is_not_placed_loosely() -> None:
    # The author's tree took another lock where the base now takes its own: the rebuilt
    # function would take one version's lock and release the other's (a false imbalance).
    (one,) = parse_diff(LOOSE_PATCH, MailSettings())
    assert rebuilt_views(one, LOOSE_BASE) is not None
    relocked = LOOSE_BASE.replace("\tif (usage > memcg->high_limit)",
                                  "\tspin_lock_irq(&memcg->move_lock);")
    assert rebuilt_views(one, relocked) is None
    # a differing line that neither takes nor drops a lock still places loosely
    renamed = LOOSE_BASE.replace("\tif (usage > memcg->high_limit)", "\tif (usage > memcg->hi)")
    assert rebuilt_views(one, renamed) is not None


def test_a_change_the_base_already_has_nearby_is_not_placed_again() -> None:
    # The base merged the change and moved it since (here: before the reclaim check);
    # placing the hunk loosely would take the css reference twice.
    (one,) = parse_diff(LOOSE_PATCH, MailSettings())
    merged = LOOSE_BASE.replace("\tusage = page_counter_read(&memcg->memory);\n",
                                "\tcss_get(&memcg->css);\n\tusage = page_counter_read(&memcg->memory);\n")
    assert rebuilt_views(one, merged) is None
    assert rebuilt_views(one, LOOSE_BASE) is not None  # not there: placed as before


def test_named_base_functions_are_the_whole_file_parses_own() -> None:
    from reviewbot.engine.cfunc import views_from_text
    from reviewbot.engine.rebuild import named_views

    text = "\n".join([
        "static int helper(void);",  # a forward declaration: not a definition
        "",
        BASE,
        "static int late(struct obj *o) { return o->count; }",  # not kernel style
    ])
    whole = {v.name: v for v in views_from_text("x.c", text)}
    for name in ("helper", "target", "late"):
        (view,) = named_views("x.c", text, {name})
        assert view.first_row == whole[name].first_row
        assert [view.row_text(r) for r in view.lines()] == \
            [whole[name].row_text(r) for r in whole[name].lines()]
    assert named_views("x.c", text, {"absent"}) == []


def test_fuzz_does_not_move_a_hunk_into_another_function() -> None:
    # Only `spin_unlock(...)`, `return ret;` and `}` would be left to compare once fuzz
    # drops the changed context; they also close other(), which git's @@ line does not name.
    other = BASE.replace("\tret = helper();\n\to->count++;\n", "\tret = helper() + 1;\n") + (
        "int other(struct obj *o)\n{\n\tint ret;\n\n\tspin_lock(&o->lock);\n"
        "\tret = o->count;\n\to->count++;\n\tspin_unlock(&o->lock);\n\treturn ret;\n}\n")
    result = rebuild(fd(), other)
    # (Without the check, fuzz 2 put msleep() into other(), whose lines fit.)
    assert result.missed and "\tmsleep(10);" not in result.text.split("\n")


def test_a_file_the_nearest_base_cannot_place_is_read_on_another_base() -> None:
    from reviewbot.engine.run import build_file_context

    elsewhere = BASE.replace("int target(struct obj *o)\n{\n\tint ret;\n",
                             "int target(struct obj *o)\n{\n\tint ret = 0;\n") \
        .replace("\tret = helper();\n\to->count++;\n", "\tret = other();\n\to->total++;\n")
    assert rebuild(fd(), elsewhere).missed  # the nearest base has rewritten the function
    applied = BASE.replace("\to->count++;\n", "\to->count++;\n\tmsleep(10);\n")
    fc = build_file_context(fd(), None, None, None, lambda path: elsewhere,
                            lambda path: iter([("v-applied", applied), ("v-old", BASE)]))
    (view,) = fc.post_views
    assert fc.read_on == "v-old" and not view.partial  # whole, from the base that fits
    # A base that only holds the change already applied is no tree the author had.
    fc = build_file_context(fd(), None, None, None, lambda path: elsewhere,
                            lambda path: iter([("v-applied", applied)]))
    assert fc.read_on is None and fc.post_views[0].partial
