"""Error paths that return the 0 of an earlier success (engine/errcode.py)."""

from __future__ import annotations

from reviewbot.engine.cfunc import views_from_text
from reviewbot.engine.errcode import missing_error_codes


def hits(body: str, decl: str = "\tint ret;\n\tchar *buf;\n") -> list[str]:
    src = "int f(struct obj *o)\n{\n" + decl + body + "}\n"
    (view,) = views_from_text("kernel/x.c", src, added=frozenset(range(1, 100)))
    return [r.captures["detail"] for r in missing_error_codes(view)]


SETUP = "\tret = obj_prepare(o);\n\tif (ret)\n\t\treturn ret;\n"


def test_an_allocation_failure_leaving_with_the_zero_of_a_success() -> None:
    (detail,) = hits(SETUP + "\tbuf = kzalloc(8, GFP_KERNEL);\n\tif (!buf)\n\t\tgoto out;\n"
                     "\to->buf = buf;\nout:\n\treturn ret;\n")
    assert "the failure `!buf` at line 9 leaves through `return ret;` at line 13" in detail


def test_a_call_tested_inline_after_a_success() -> None:
    (detail,) = hits(SETUP + "\tif (obj_fill(o) < 0)\n\t\tgoto out;\n\treturn 0;\nout:\n"
                     "\tobj_undo(o);\n\treturn ret;\n")
    assert "`obj_fill(o) < 0`" in detail


def test_the_error_code_set_or_unknown_is_not_reported() -> None:
    alloc = "\tbuf = kzalloc(8, GFP_KERNEL);\n\tif (!buf)\n"
    assert not hits(SETUP + alloc + "\t{\n\t\tret = -ENOMEM;\n\t\tgoto out;\n\t}\n\to->buf = buf;\n"
                    "out:\n\treturn ret;\n")
    # Not known to be 0: the failure path may well carry the earlier error.
    assert not hits("\tret = obj_prepare(o);\n" + alloc + "\t\tgoto out;\nout:\n\treturn ret;\n")
    # A failure that skips one item of a loop is not an error exit.
    assert not hits(SETUP + "\twhile (obj_next(o)) {\n\t\tbuf = kzalloc(8, GFP_KERNEL);\n"
                    "\t\tif (!buf)\n\t\t\tcontinue;\n\t\tobj_add(o, buf);\n\t}\n\treturn ret;\n")


def test_a_returned_count_is_not_an_error_code() -> None:
    assert not hits("\tn = 0;\n\tbuf = kzalloc(8, GFP_KERNEL);\n\tif (!buf)\n\t\tgoto done;\n"
                    "\tn = obj_count(o, buf);\ndone:\n\treturn n;\n", decl="\tint n;\n\tchar *buf;\n")
