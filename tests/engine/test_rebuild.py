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
