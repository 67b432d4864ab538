"""tree-sitter functions of kernel C, whole files and hunks."""

from __future__ import annotations

from reviewbot.diff import parse_diff
from reviewbot.engine.cfunc import prepare_source, views_from_hunks, views_from_text

SRC = """\
static int __init setup(void)
{
\treturn 0;
}

int walk(struct mem_cgroup *root)
{
\tstruct mem_cgroup *iter;

\tfor_each_mem_cgroup_tree(iter, root) {
\t\tif (iter->oom_lock)
\t\t\tbreak;
\t}
\tdo_each_thread(g, t) {
\t\tcount++;
\t} while_each_thread(g, t);
\tlist_for_each_entry(c, &p->children, sibling);
\treturn 0;
}
"""


def test_prepare_source_keeps_lines_and_rewrites_loops() -> None:
    out = prepare_source(SRC)
    assert out.count("\n") == SRC.count("\n")
    assert "while (for_each_mem_cgroup_tree(iter, root)) {" in out
    assert "while (do_each_thread(g, t)) {" in out
    assert "} while (while_each_thread(g, t));" in out
    # A call followed by ';' is not a loop head.
    assert "\tlist_for_each_entry(c, &p->children, sibling);" in out
    assert "static int        setup(void)" in out  # __init blanked, same length


def test_views_from_text_finds_functions_with_line_numbers() -> None:
    views = views_from_text("mm/x.c", SRC)
    assert [v.name for v in views] == ["setup", "walk"]
    walk = views[1]
    assert walk.lines()[0] == 6 and walk.lines()[-1] == 19
    assert not walk.partial and not walk.parse_errors
    assert [v.name for v in views_from_text("mm/x.c", SRC, wanted={11})] == ["walk"]


HUNKS = """\
--- a/mm/x.c
+++ b/mm/x.c
@@ -10,6 +10,7 @@ static void first(struct mem_cgroup *memcg)
 \tcss_get(&memcg->css);
 \tif (!ok)
 \t\treturn;
+\tfoo();
 \tcss_put(&memcg->css);
 }
{SP}
@@ -40,3 +41,9 @@ static void second(void)
 }
{SP}
 /* new helper */
+static int third(int a)
+{
+\treturn a;
+}
+
+int x;
""".replace("{SP}", " ")


def test_views_from_hunks_wrap_partial_and_keep_new_functions_whole() -> None:
    (fd,) = parse_diff(HUNKS)
    views = views_from_hunks(fd)
    by_name = {v.name: v for v in views}
    # The first hunk starts inside first(): wrapped, partial, post-image lines kept.
    assert by_name["first"].partial
    assert by_name["first"].lines()[:2] == (10, 11)
    assert 13 in by_name["first"].added
    # The second hunk starts *after* second() ended: third() is a complete function.
    assert not by_name["third"].partial
    assert by_name["third"].lines() == (44, 45, 46, 47)
    pre = views_from_hunks(fd, post=False)
    assert "third" not in {v.name for v in pre}


def test_free_variables_are_cleaned_up_where_their_block_ends() -> None:
    src = ("static int f(void)\n{\n\trcu_read_lock();\n\tfor (;;) {\n"
           "\t\tstruct mm_struct *mm __free(mmput) = g();\n"
           "\t\tchar *buf __free(kfree) = NULL;\n\t\trcu_read_lock();\n\t}\n\treturn 0;\n}\n")
    out = prepare_source(src)
    assert out.count("\n") == src.count("\n")  # line numbers kept
    assert "__free(" not in out
    # On the closing brace's line, the last declared first (cleanup.h order).
    assert "\t__free_kfree(buf); __free_mmput(mm); }\n" in out


KERNEL_6X = """__bpf_kfunc void css_flush(struct cgroup_subsys_state *css)
{
\tstatic DEFINE_RATELIMIT_STATE(rs, HZ, 10);
\tunsigned int n = min_t(unsigned int, css->nr, 64);
\tunsigned long *p = alloc_percpu(unsigned long);
\tunsigned long v = (unsigned long)n;

\tdo_each_subsys_mask(ss, ssid, mask) {
\t\tspin_lock(&css_set_lock);
\t\tss->exit(css);
\t\tspin_unlock(&css_set_lock);
\t} while_each_subsys_mask();
}

void __noreturn die_now(long code)
{
\tfor (;;)
\t\tcpu_relax();
}
"""


def test_kernel_6x_idioms_parse_without_errors_and_keep_casts() -> None:
    # Each construct left one whole function unparsed in 6.12 (rstat.c, oom_kill.c,
    # slub.c, cgroup.c's rebind_subsystems(), exit.c's do_exit()).
    views = views_from_text("kernel/x.c", KERNEL_6X)
    assert [(v.name, v.parse_errors) for v in views] == [("css_flush", False), ("die_now", False)]
    out = prepare_source(KERNEL_6X)
    assert out.count("\n") == KERNEL_6X.count("\n")
    assert "min_t(unsigned_int, css->nr, 64)" in out and "alloc_percpu(unsigned_long)" in out
    assert "(unsigned long)n" in out  # a cast stays a cast
    assert "while (do_each_subsys_mask(ss, ssid, mask))" in out


# Three lines of context begin and end wherever they fall: inside a multi-line signature,
# at a `} else {` of a block opened above, after an `if (...)` whose body is below.
FRAGMENTS = """diff --git a/mm/x.c b/mm/x.c
--- a/mm/x.c
+++ b/mm/x.c
@@ -10,8 +10,9 @@ static ssize_t limit_write(struct kernfs_open_file *of,
 \t\t\t   char *buf, size_t nbytes, loff_t off)
 {
 \tunsigned long v;
+\tint err;
\x20
 \terr = parse(buf, &v);
 \tif (err)
 \t\treturn err;
 \tif (v > LIMIT)
@@ -40,7 +41,8 @@ static int mode_update(struct mode *m, int cmd)
 \t\tnew = MODE_ON;
 \t} else if (cmd == MODE_OFF) {
 \t\tnew = MODE_OFF;
+\t\tm->count--;
 \t} else {
 \t\tnew = m->mode;
 \t}
 \tif (new != m->mode &&
"""


def test_hunk_fragments_parse_whatever_their_context_cuts() -> None:
    (fd,) = parse_diff(FRAGMENTS)
    views = {v.name: v for v in views_from_hunks(fd)}
    assert set(views) == {"limit_write", "mode_update"}
    assert not views["limit_write"].parse_errors and not views["mode_update"].parse_errors
    # Lines keep their numbers, and the added lines are where the patch put them.
    assert 13 in views["limit_write"].added and 44 in views["mode_update"].added
    assert views["mode_update"].partial
