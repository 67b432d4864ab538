"""function_bodies() finds definitions from each column-0 `{` (facts/extract.py
_definitions): the same spans as the definition pattern it replaces, on the shapes that
make a scanner go wrong."""

from __future__ import annotations

from reviewbot.facts.extract import _DEFINITION, _definitions, function_bodies

SOURCE = """static int first(void)
{
}
#ifdef CONFIG_X
int proto(int a);
#endif
static void
split_signature(struct obj *o,
\t\tint v)
{
\to->v = v;
}

struct table t = {
\t.fn = first,
};

/* a comment left blank by the caller */
void after_blank(void)

{
\treturn;
}
int no_close(void)
{
\tx();
"""


def test_the_scanner_finds_what_the_pattern_finds() -> None:
    expected = [(m.group(1), m.start(2), m.end(2)) for m in _DEFINITION.finditer(SOURCE)]
    assert list(_definitions(SOURCE)) == expected
    names = [name for name, _, _, _ in function_bodies(SOURCE)]
    assert names == ["first", "split_signature", "after_blank"]  # (no_close has no end)
    (_, static, start, body), = [b for b in function_bodies(SOURCE) if b[0] == "split_signature"]
    assert static and body == "\to->v = v;\n" and SOURCE[start:start + len(body)] == body
