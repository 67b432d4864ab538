"""A hunk that fits no base, read from its lines alone, is entered holding what the base
function holds where the hunk starts (engine/anchor.py)."""

from __future__ import annotations

from reviewbot.config import MailSettings
from reviewbot.diff import parse_diff
from reviewbot.engine.anchor import MEMO_KEY
from reviewbot.engine.contextrun import run_context
from reviewbot.engine.run import build_file_context
from reviewbot.facts.tables import EMPTY

# The base: obj_update() takes the object's spinlock, and the hunks below start inside it.
BASE = """\
#include <linux/obj.h>

void obj_update(struct obj *o, int v)
{
\tstruct obj_stats *st = o->stats;

\tspin_lock(&o->lock);
\tst->seen++;
\to->value = v;
\tif (v > o->max)
\t\to->max = v;
\tobj_note(o);
\tspin_unlock(&o->lock);
\tobj_wake(o);
}
"""

# The author's tree differs in the lines after the change (its obj_note() is called
# obj_record()), so the hunk cannot be placed; it starts after spin_lock() and adds a
# mutex_lock(), which sleeps under that spinlock.
INSIDE = """\
diff --git a/kernel/obj.c b/kernel/obj.c
--- a/kernel/obj.c
+++ b/kernel/obj.c
@@ -40,5 +40,7 @@ void obj_update(struct obj *o, int v)
 \tst->seen++;
 \to->value = v;
+\tmutex_lock(&o->mutex);
+\tmutex_unlock(&o->mutex);
 \tobj_record(o, v);
 \tobj_record_done(o);
 \tspin_unlock(&o->lock);
"""


def sleeps(patch: str, base: str = BASE) -> list[str]:
    (fd,) = parse_diff(patch, MailSettings())
    fc = build_file_context(fd, None, None, None, lambda path: base)
    (view,) = fc.post_views
    assert view.partial and not view.shown  # read from the hunk alone
    return [r.captures["detail"] for r in run_context({"check": "sleep-in-atomic"}, view, EMPTY)]


def test_a_hunk_inside_a_locked_section_of_the_base_function_is_entered_holding_the_lock() -> None:
    (detail,) = sleeps(INSIDE)
    assert "mutex_lock()" in detail
    assert "held where this hunk starts in the nearest base (spin_lock() at line 7 of the base's " \
        "obj_update())" in detail


def test_without_a_base_or_after_the_unlock_nothing_is_held() -> None:
    (fd,) = parse_diff(INSIDE, MailSettings())
    (view,) = build_file_context(fd, None, None, None, None).post_views
    assert MEMO_KEY not in view.memo
    assert run_context({"check": "sleep-in-atomic"}, view, EMPTY) == []
    after = INSIDE.replace(" \tspin_unlock(&o->lock);\n", " }\n") \
        .replace(" \tst->seen++;\n \to->value = v;\n", " \tspin_unlock(&o->lock);\n \tobj_wake(o);\n")
    assert sleeps(after) == []


def test_a_lock_the_patch_removes_is_not_the_authors() -> None:
    # The hunk removes the base's spin_lock() line: the author's function may not take it
    # at all, so the base's state there says nothing.
    removed = INSIDE.replace(" \tst->seen++;\n", "-\tspin_lock(&o->lock);\n \tst->seen++;\n") \
        .replace(" \tspin_unlock(&o->lock);\n", " \tobj_flush(o);\n \tobj_end(o);\n") \
        .replace("@@ -40,5 +40,7 @@", "@@ -40,7 +40,8 @@")
    assert sleeps(removed) == []
    kept = removed.replace("-\tspin_lock(&o->lock);\n", "").replace("@@ -40,7 +40,8 @@", "@@ -40,6 +40,8 @@")
    assert len(sleeps(kept)) == 1


def test_lines_found_twice_in_the_base_function_give_no_place() -> None:
    twice = BASE.replace("\tobj_wake(o);\n", "\tst->seen++;\n\to->value = v;\n\tobj_wake(o);\n")
    (fd,) = parse_diff(INSIDE, MailSettings())
    (view,) = build_file_context(fd, None, None, None, lambda path: twice).post_views
    assert MEMO_KEY not in view.memo


def test_a_hunk_whose_header_names_no_function_is_placed_by_its_lines_in_the_whole_file() -> None:
    # git's default hunk header picks the last line starting in column 0, here a label:
    # the function is the base's one whose lines hold the hunk's leading context.
    (detail,) = sleeps(INSIDE.replace("@@ void obj_update(struct obj *o, int v)", "@@ out_unlock:"))
    assert "spin_lock() at line 7 of the base's obj_update()" in detail


# A static function whose every caller in the base file holds a spinlock.
CALLED_BASE = """\
static DEFINE_SPINLOCK(big_lock);

static void obj_step(struct obj *o, int v)
{
\tstruct obj_stats *st = o->stats;

\tst->seen++;
\to->value = v;
\tobj_note(o);
\tobj_wake(o);
}

void obj_run(struct obj *o)
{
\tspin_lock(&big_lock);
\tobj_step(o, 1);
\tspin_unlock(&big_lock);
}
"""
CALLED = INSIDE.replace("@@ -40,5 +40,7 @@ void obj_update(struct obj *o, int v)",
                        "@@ -7,5 +7,7 @@ static void obj_step(struct obj *o, int v)") \
    .replace(" \tspin_unlock(&o->lock);\n", " \tobj_wake(o);\n")


def test_a_hunk_inside_a_function_its_callers_call_locked_is_entered_holding_their_lock() -> None:
    # The base function is read in its file: what every caller holds is held there too.
    (detail,) = sleeps(CALLED, CALLED_BASE)
    assert "big_lock, held by every caller of obj_step() (obj_run()" in detail


def test_a_callers_lock_whose_locking_the_patch_changes_is_not_assumed() -> None:
    # The same patch also stops obj_run() from taking big_lock (the series moves the
    # locking): the base's callers no longer say what the author's hold.
    changed = CALLED + """\
@@ -14,5 +16,4 @@ void obj_run(struct obj *o)
 {
-\tspin_lock(&big_lock);
 \tobj_step(o, 1);
 \tspin_unlock(&big_lock);
 }
"""
    assert sleeps_all(changed, CALLED_BASE) == []


def sleeps_all(patch: str, base: str) -> list[str]:
    (fd,) = parse_diff(patch, MailSettings())
    fc = build_file_context(fd, None, None, None, lambda path: base)
    return [r.captures["detail"] for v in fc.post_views if v.name == "obj_step"
            for r in run_context({"check": "sleep-in-atomic"}, v, EMPTY)]
