"""parse_diff: line numbers, file kinds, limits and path safety."""

from __future__ import annotations

import pytest

from reviewbot.config import MailSettings
from reviewbot.diff import check_path, function_name, parse_diff
from reviewbot.errors import BadInputError

MODIFY = """\
diff --git a/mm/memcontrol.c b/mm/memcontrol.c
index 1111111..2222222 100644
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -10,4 +10,5 @@ static void mem_cgroup_attach(struct cgroup_taskset *tset)
 \tstruct task_struct *task;
-\tint a;
+\tint b;
+\tint c;
 \treturn;
 }
-- \n2.39.2
"""


def test_modify_line_numbers_and_section() -> None:
    (f,) = parse_diff(MODIFY)
    assert f.old_path == f.new_path == "mm/memcontrol.c"
    assert not (f.is_new or f.is_deleted or f.is_rename or f.is_binary)
    (h,) = f.hunks
    assert (h.old_start, h.old_len, h.new_start, h.new_len) == (10, 4, 10, 5)
    assert h.section == "static void mem_cgroup_attach(struct cgroup_taskset *tset)"
    assert h.function == "mem_cgroup_attach"
    kinds = [ln.kind for ln in h.lines]
    assert kinds == [" ", "-", "+", "+", " ", " "]
    assert [ln.text for ln in h.added] == ["\tint b;", "\tint c;"]
    assert h.removed[0].old_lineno == 11 and h.removed[0].new_lineno is None
    assert h.added[1].new_lineno == 12 and h.added[1].old_lineno is None
    assert h.lines[-1].old_lineno == 13 and h.lines[-1].new_lineno == 14


def test_new_deleted_rename_mode_binary() -> None:
    text = """\
diff --git a/new.c b/new.c
new file mode 100644
index 0000000..1111111
--- /dev/null
+++ b/new.c
@@ -0,0 +1,2 @@
+int x;
+int y;
diff --git a/old.c b/old.c
deleted file mode 100644
index 1111111..0000000
--- a/old.c
+++ /dev/null
@@ -1 +0,0 @@
-int z;
diff --git a/a.c b/b.c
similarity index 100%
rename from a.c
rename to b.c
diff --git a/s.sh b/s.sh
old mode 100644
new mode 100755
diff --git a/blob b/blob
index 1111111..2222222 100644
Binary files a/blob and b/blob differ
"""
    new, old, ren, mode, binary = parse_diff(text)
    assert new.is_new and new.old_path is None and new.new_path == "new.c"
    assert [ln.new_lineno for ln in new.hunks[0].lines] == [1, 2]
    assert old.is_deleted and old.new_path is None and old.path == "old.c"
    assert ren.is_rename and (ren.old_path, ren.new_path) == ("a.c", "b.c")
    assert mode.mode_changed and (mode.old_mode, mode.new_mode) == ("100644", "100755")
    assert binary.is_binary and not binary.hunks


@pytest.mark.parametrize("bad", ["/etc/passwd", "a/../../x", "../x", "mm/../../x"])
def test_unsafe_paths_refused(bad: str) -> None:
    text = f"--- a/{bad}\n+++ b/{bad}\n@@ -1 +1 @@\n-a\n+b\n".replace("a//", "/").replace(
        "b//", "/"
    )
    with pytest.raises(BadInputError, match="refused|'\\.\\.'"):
        parse_diff(text)


def test_check_path_accepts_normal() -> None:
    assert check_path("mm/memcontrol.c") == "mm/memcontrol.c"
    with pytest.raises(BadInputError, match="NUL"):
        check_path("a\0b")


def test_size_limits_named() -> None:
    with pytest.raises(BadInputError, match="max_patch_lines"):
        parse_diff(MODIFY, MailSettings(max_patch_lines=5))
    with pytest.raises(BadInputError, match="max_message_bytes"):
        parse_diff(MODIFY, MailSettings(max_message_bytes=20), source="x.patch")


def test_malformed_and_empty() -> None:
    with pytest.raises(BadInputError, match="malformed|no file"):
        parse_diff("+++ b/x\n@@ -1 +1 @@\n-a\n+b\n")
    assert parse_diff("") == ()


@pytest.mark.parametrize(
    ("section", "name"),
    [
        ("static int foo(void)", "foo"),
        ("int mem_cgroup_charge(struct folio *folio, struct mm_struct *mm,", "mem_cgroup_charge"),
        ("SYSCALL_DEFINE0(fork)", "SYSCALL_DEFINE0"),
        ("struct mem_cgroup {", None),
        ("", None),
    ],
)
def test_function_name(section: str, name: str | None) -> None:
    assert function_name(section) == name


def test_quilt_style_paths_stripped_like_patch_p1() -> None:
    text = (
        "--- linux-2.6.25-rc8/fs/exec.c~memory-controller-add-mm-owner\t2008-04-03\n"
        "+++ linux-2.6.25-rc8-balbir/fs/exec.c\t2008-04-03\n"
        "@@ -1 +1,2 @@ static int exec_mmap(struct mm_struct *m\n"
        " a\n"
        "+b\n"
    )
    (f,) = parse_diff(text)
    assert f.old_path == f.new_path == "fs/exec.c"
    assert f.hunks[0].function == "exec_mmap"


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_LINE = st.tuples(st.sampled_from([" ", "+", "-"]), st.text("abc xyz;(){}\t", max_size=20))


@given(st.lists(_LINE, min_size=1, max_size=40), st.integers(min_value=1, max_value=5000))
def test_line_numbers_follow_the_hunk(lines: list[tuple[str, str]], start: int) -> None:
    old_len = sum(1 for k, _ in lines if k != "+")
    new_len = sum(1 for k, _ in lines if k != "-")
    body = "".join(f"{k}{t}\n" for k, t in lines)
    text = f"--- a/mm/x.c\n+++ b/mm/x.c\n@@ -{start},{old_len} +{start},{new_len} @@\n{body}"
    (fd,) = parse_diff(text)
    (hunk,) = fd.hunks
    assert [ln.kind for ln in hunk.lines] == [k for k, _ in lines]
    assert [ln.text for ln in hunk.lines] == [t for _, t in lines]
    news = [ln.new_lineno for ln in hunk.lines if ln.kind != "-"]
    olds = [ln.old_lineno for ln in hunk.lines if ln.kind != "+"]
    if new_len:
        assert news == list(range(start, start + new_len))
    if old_len:
        assert olds == list(range(start, start + old_len))
