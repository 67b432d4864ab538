"""The rules stage's shortcuts give the answers of the plain code they replace (issue 10:
rules-only review at a tenth of checkpatch.pl's time, with findings unchanged).

Each test runs a shortcut and the straightforward version side by side on inputs chosen
for their edge cases: the regexes' word boundaries and line starts, the base-file windows
and their whole-file fallback, the empty rows a function window starts with.
"""

from __future__ import annotations

import re

from reviewbot.engine.cfunc import (
    LOOP_MACRO,
    FunctionView,
    iter_functions,
    parser,
    prepare_source,
    views_from_text,
)
from reviewbot.engine.csource import _ANNOTATION_WORDS, _ANNOTATIONS, _LOOP_WORDS
from reviewbot.engine.rebuild import Braces, NamedViews, _definition_rows, named_views
from reviewbot.engine.refspec import _needle, _word_matcher, finds_call
from reviewbot.facts.extract import MAX_ARGS, calls_of

TEXTS = [
    "\tcss_get(&memcg->css);\n",
    "x = css_get (a);",
    "xcss_get(a); css_get_many(a, 2);",
    "if (css_tryget(x)) foo(css_put\n(x));",
    "1css_get(a) éspin_lock(b) spin_lock_irq(c)",
    "__guard_spin_lock(&l); guard(mutex)(&m);",
    "",
]


def test_finds_call_agrees_with_the_needle_search() -> None:
    needles = [
        _needle(["css_get|css_get_many", "css_put"]),
        _needle([r"(?:__guard_)?(?:spin_lock|spin_lock_irq)", r"\w*_tryget"]),
        _needle(["foo"]),
    ]
    for needle in needles:
        assert _word_matcher(needle.pattern) is not None  # the fast path is taken
        for text in TEXTS:
            assert finds_call(needle, text) == bool(needle.search(text)), (needle.pattern, text)


def test_finds_call_falls_back_for_a_needle_that_is_not_words_only() -> None:
    for names in (["a.b"], [r"\w*"], [r"x\s"]):
        needle = _needle(names)
        assert _word_matcher(needle.pattern) is None
        for text in ["a.b(", "axb (", "if (x)", "x (y)"]:
            assert finds_call(needle, text) == bool(needle.search(text))


def _rows_by_regex(text: str, name: str) -> list[int]:
    pattern = re.compile(rf"^[A-Za-z_].*\b{re.escape(name)}\s*\(", re.M)
    return [text.count("\n", 0, m.start()) for m in pattern.finditer(text)]


def test_definition_rows_agree_with_the_line_pattern() -> None:
    texts = [
        "static int foo(void)\n{\n}\nint bar(void) { return foo(); }\n",
        "foo(x)\n\tfoo(y);\nx foo(a) foo (b)\nb foo\n(\nc foo(z)\n",
        "int x = foo(\nfoo(1));\n_ foo(", " foo(", "xfoo( foo(", "éfoo(x)\nx éfoo( foo(",
    ]
    for text in texts:
        for name in ("foo", "bar", "x"):
            assert _definition_rows(text, name) == _rows_by_regex(text, name), (text, name)


BASE = """\
#include <linux/x.h>

static int helper(struct obj *o)
{
\treturn o->n;
}

int target(struct obj *o)
{
\tint ret = helper(o);

\treturn ret;
}

#define odd_one(x) \\
\tdo { } while (0)
int odd_one(int x) { return x; }
"""


def _shape(views: list[FunctionView]) -> list[tuple[str, int, str]]:
    return [(v.name, v.first_row, str(v.node)) for v in views]


def test_named_views_one_name_at_a_time_is_the_whole_list_filtered() -> None:
    for names in ({"helper", "target"}, {"target", "odd_one"}, {"missing", "helper"}):
        everything = named_views("kernel/x.c", BASE, names)
        one_by_one = NamedViews("kernel/x.c", BASE, names)
        for name in sorted(names) + ["not_asked"]:
            assert _shape(one_by_one.of(name)) == _shape([v for v in everything if v.name == name])
        assert _shape(one_by_one.all()) == _shape(everything)
    # odd_one's definition line has no kernel-style window: the whole file is read.
    assert _shape(NamedViews("kernel/x.c", BASE, {"odd_one"}).of("odd_one"))


def _window_by_scan(rows: list[str], row: int) -> tuple[int, int] | None:
    open_row = next((r for r in range(row, -1, -1) if rows[r].startswith("{")), None)
    if open_row is None or any(rows[r].startswith("}") for r in range(open_row, row)):
        return None
    close_row = next((r for r in range(row, len(rows)) if rows[r].startswith("}")), None)
    if close_row is None:
        return None
    first = open_row
    while first > 0 and rows[first - 1].strip() \
            and not rows[first - 1].rstrip().endswith((";", "}", "*/")) \
            and not rows[first - 1].startswith("#"):
        first -= 1
    return first, close_row


def test_function_windows_agree_with_scanning_the_rows() -> None:
    for text in (BASE, "{\n}\n{", "}\n{\nx\n", "int f(void)\n{\n{\n}\n}\n", "", "\n\n{"):
        rows = text.split("\n")
        braces = Braces(text, rows)
        for row in range(len(rows)):
            assert braces.window(row) == _window_by_scan(rows, row), (text, row)


def test_a_window_with_empty_rows_above_parses_as_it_would_in_full() -> None:
    rows = BASE.split("\n")
    first, last = Braces(BASE, rows).window(9) or (0, 0)
    snippet = "\n" * first + "\n".join(rows[first:last + 1])
    src = prepare_source(snippet)
    plain = [str(fn) for fn in iter_functions(parser().parse(src.encode()).root_node)]
    views = views_from_text("kernel/x.c", snippet)
    assert [str(v.node) for v in views] == plain
    assert [v.node.start_point[0] for v in views] == [first]


def test_prepare_source_skips_only_rewrites_that_cannot_match() -> None:
    # Every alternative of the annotations regex holds one of the words the shortcut
    # looks for, and every loop macro name holds a loop word.
    alternatives = _ANNOTATIONS.pattern[len(r"\b(?:"):-1].split("|")
    assert all(any(w.rstrip("(") in a.replace("\\(", "(") for w in _ANNOTATION_WORDS)
               for a in alternatives)
    for name in ("for_each_mem_cgroup", "list_for_each_entry", "do_each_thread",
                 "while_each_thread_never", "css_for_each_descendant_pre"):
        assert LOOP_MACRO.match(name) and any(w in name for w in _LOOP_WORDS)
    sample = ("static void __init f(struct x __rcu *p)\n{\n\tfor_each_mem_cgroup(m) {\n"
              "\t\tfoo(container_of(p, struct mem_cgroup, css));\n\t}\n}\n")
    out = prepare_source(sample)
    assert "__init" not in out and "__rcu" not in out and "while (for_each_mem_cgroup(m))" in out
    assert "struct_mem_cgroup" in out and len(out.split("\n")) == len(sample.split("\n"))


def test_calls_of_reads_arguments_to_the_matching_parenthesis() -> None:
    body = "\tfoo(a, (b), bar(c));\n\tbaz(((x);\n\tqux(" + "y" * (MAX_ARGS + 10) + ")\n"
    found = {c.name: c.args for c in calls_of(body)}
    assert found["foo"] == "a, (b), bar(c)"
    assert found["bar"] == "c"
    assert found["baz"].startswith("((x);")  # unclosed: read to the bound
    assert found["qux"] == "y" * MAX_ARGS
