"""Code a patch moves into a new function is judged against where it came from."""

from __future__ import annotations

from reviewbot.config import MailSettings
from reviewbot.diff import parse_diff
from reviewbot.engine.loader import default_rules_dir, load_rules
from reviewbot.engine.run import build_file_context, run_rules
from reviewbot.engine.types import PatchContext

# A leak (the error return keeps the reference) that was already in lookup_fd(); the patch
# moves the body into a helper, keeping the leak: that is not this patch's doing.
MOVE = """\
diff --git a/kernel/cgroup/x.c b/kernel/cgroup/x.c
index 1111111..2222222 100644
--- a/kernel/cgroup/x.c
+++ b/kernel/cgroup/x.c
@@ -10,16 +10,25 @@
+static struct cgroup *lookup_file(struct file *f)
+{
+\tstruct cgroup *cgrp;
+
+\tcgrp = cgroup_get_from_path(f->name);
+\tif (IS_ERR(cgrp))
+\t\treturn cgrp;
+\tif (!cgroup_on_dfl(cgrp))
+\t\treturn ERR_PTR(-EBADF);
+\tcgroup_put(cgrp);
+\treturn NULL;
+}
+
 struct cgroup *lookup_fd(int fd)
 {
 \tstruct cgroup *cgrp;
 \tstruct file *f;
{BLANK}
 \tf = fget(fd);
 \tif (!f)
 \t\treturn ERR_PTR(-EBADF);
-\tcgrp = cgroup_get_from_path(f->name);
-\tif (IS_ERR(cgrp))
-\t\treturn cgrp;
-\tif (!cgroup_on_dfl(cgrp))
-\t\treturn ERR_PTR(-EBADF);
-\tcgroup_put(cgrp);
-\treturn NULL;
+\tcgrp = lookup_file(f);
+\tfput(f);
+\treturn cgrp;
 }
""".replace("{BLANK}", " ")  # a context line that is empty in the file


def findings(diff: str) -> list[tuple[str, bool]]:
    rules = [r for r in load_rules(default_rules_dir()) if r.id == "refcount-imbalance"]
    files = parse_diff(diff, MailSettings())
    ctx = PatchContext(patch_index=1, files=[build_file_context(fd, None, None, None) for fd in files])
    return [(f.function or "", f.preexisting) for f in run_rules(rules, ctx).findings
            if "reference on `cgrp`" in f.message]


def test_a_leak_moved_into_a_new_function_is_pre_existing() -> None:
    found = findings(MOVE)
    assert found and all(pre for _, pre in found), found


def test_the_same_leak_written_new_is_the_patchs() -> None:
    new_only = MOVE.replace("-\tcgrp = cgroup_get_from_path(f->name);\n", "-\tcgrp = NULL;\n")
    new_only = "\n".join(ln for ln in new_only.split("\n")
                         if not ln.startswith("-\t") or "cgrp = NULL" in ln)
    new_only = new_only.replace("@@ -10,16 +10,25 @@", "@@ -10,10 +10,25 @@")
    found = findings(new_only + "\n")
    assert any(not pre for _, pre in found), found
