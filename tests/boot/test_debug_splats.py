"""The debug profile's reports on the console: KASAN, lockdep, debug objects and kmemleak are
recognised, kept whole and fingerprinted so that base and patched runs compare.

The console texts follow the kernels' own formats (Documentation/dev-tools/kasan.rst,
kmemleak.rst; kernel/locking/lockdep.c and lib/debugobjects.c of 6.1 and 6.12), with the
printk timestamps the guest boots with.
"""

from __future__ import annotations

import re

from reviewbot.boot.console import leak_frames, parse_console


def _stamp(text: str, start: float = 41.0) -> str:
    """Prefix every line with a printk timestamp, as the serial console shows kernel lines."""
    out = []
    for i, line in enumerate(text.splitlines()):
        out.append(f"[{start + i / 1000:12.6f}] {line}")
    return "\n".join(out) + "\n"


def _in_test(kernel_text: str, test: str = "dying_cgroups", ok: bool = True) -> str:
    return (
        "# reviewbot-run: memcg_charge\n"
        f"# start {test}\n"
        + kernel_text
        + f"{'ok' if ok else 'not ok'} 8 {test}\n"
        "# reviewbot-exit: memcg_charge 0\n"
    )


KASAN = """\
==================================================================
BUG: KASAN: slab-use-after-free in css_put+0x2c/0xa0
Read of size 8 at addr ffff888005a4c0a8 by task kworker/1:2/{pid}

CPU: 1 PID: {pid} Comm: kworker/1:2 Not tainted 6.12.118 #1
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
Workqueue: cgroup_destroy css_free_rwork_fn
Call Trace:
 <TASK>
 dump_stack_lvl+0x5d/0x80
 print_report+0xc1/0x5e0
 kasan_report+0xb9/0xf0
 css_put+0x2c/0xa0
 mem_cgroup_css_free+0x4a/0x1c0
 css_free_rwork_fn+0x8e/0x5a0
 process_one_work+0x5c4/0xe40
 worker_thread+0x87/0x760
 kthread+0x28b/0x350
 ret_from_fork+0x31/0x70
 </TASK>

Allocated by task 1:
 kasan_save_stack+0x30/0x50
 kasan_save_track+0x14/0x30
 __kasan_kmalloc+0xaa/0xb0
 __kmalloc_node_noprof+0x1d2/0x4a0
 mem_cgroup_alloc+0x6b/0x6e0
 mem_cgroup_css_alloc+0x24/0x7c0

Freed by task {pid}:
 kasan_save_stack+0x30/0x50
 kasan_save_track+0x14/0x30
 kasan_save_free_info+0x3b/0x60
 __kasan_slab_free+0x51/0x70
 kfree+0x13a/0x3b0
 mem_cgroup_css_free+0x129/0x1c0

The buggy address belongs to the object at ffff888005a4c000
 which belongs to the cache kmalloc-2k of size 2048
The buggy address is located 168 bytes inside of
 freed 2048-byte region [ffff888005a4c000, ffff888005a4c800)

Memory state around the buggy address:
 ffff888005a4bf80: fc fc fc fc fc fc fc fc fc fc fc fc fc fc fc fc
>ffff888005a4c080: fb fb fb fb fb fb fb fb fb fb fb fb fb fb fb fb
                                  ^
 ffff888005a4c100: fb fb fb fb fb fb fb fb fb fb fb fb fb fb fb fb
==================================================================
"""

CIRCULAR = """\

======================================================
WARNING: possible circular locking dependency detected
6.1.192 #1 Not tainted
------------------------------------------------------
memcg_charge/{pid} is trying to acquire lock:
ffff888004a1c0a8 (&mm->mmap_lock){{++++}}-{{3:3}}, at: mem_cgroup_move_charge+0x4c/0x1a0

but task is already holding lock:
ffffffff82a4b6d0 (cgroup_mutex){{+.+.}}-{{3:3}}, at: cgroup_migrate_execute+0x51/0x6a0

which lock already depends on the new lock.


the existing dependency chain (in reverse order) is:

-> #1 (cgroup_mutex){{+.+.}}-{{3:3}}:
       __mutex_lock+0x9c/0x8e0
       cgroup_kn_lock_live+0xc8/0x1f0
       __lock_acquire+0x2345/0x3a10
       lock_acquire+0xc8/0x2b0

-> #0 (&mm->mmap_lock){{++++}}-{{3:3}}:
       check_prevs_add+0x1b3/0xc50
       __lock_acquire+0x1e44/0x3a10
       lock_acquire+0xc8/0x2b0
       down_read+0x3f/0x190
       mem_cgroup_move_charge+0x4c/0x1a0

other info that might help us debug this:

 Possible unsafe locking scenario:

       CPU0                    CPU1
       ----                    ----
  lock(cgroup_mutex);
                               lock(&mm->mmap_lock);
                               lock(cgroup_mutex);
  lock(&mm->mmap_lock);

 *** DEADLOCK ***

3 locks held by memcg_charge/{pid}:
 #0: ffff888004ad0c48 (&of->mutex){{+.+.}}-{{3:3}}, at: kernfs_fop_write_iter+0x122/0x2b0

stack backtrace:
CPU: 0 PID: {pid} Comm: memcg_charge Not tainted 6.1.192 #1
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
Call Trace:
 <TASK>
 dump_stack_lvl+0x5b/0x77
 check_noncircular+0x25f/0x2e0
 __lock_acquire+0x1e44/0x3a10
 lock_acquire+0xc8/0x2b0
 down_read+0x3f/0x190
 mem_cgroup_move_charge+0x4c/0x1a0
 mem_cgroup_move_task+0x8e/0xd0
 cgroup_migrate_execute+0x5c1/0x6a0
 cgroup_attach_task+0x2b7/0x3a0
 __cgroup_procs_write+0x147/0x220
 </TASK>
"""

RCU = """\

=============================
WARNING: suspicious RCU usage
6.1.192 #1 Not tainted
-----------------------------
include/linux/cgroup.h:{line} suspicious rcu_dereference_check() usage!

other info that might help us debug this:


rcu_scheduler_active = 2, debug_locks = 1
1 lock held by memcg_charge/{pid}:
 #0: ffff888004b40128 (&mm->mmap_lock){{++++}}-{{3:3}}, at: do_user_addr_fault+0x1b9/0x8c0

stack backtrace:
CPU: 1 PID: {pid} Comm: memcg_charge Not tainted 6.1.192 #1
Call Trace:
 <TASK>
 dump_stack_lvl+0x5b/0x77
 lockdep_rcu_suspicious+0x14c/0x160
 {function}+0x1aa/0x1c0
 __mem_cgroup_charge+0x2a/0xc0
 do_anonymous_page+0x1f5/0x680
 </TASK>
"""

ODEBUG = """\
------------[ cut here ]------------
ODEBUG: free active (active state 0) object: {ptr} object type: rcu_head hint: 0x0
WARNING: CPU: 1 PID: {pid} at lib/debugobjects.c:514 debug_print_object+0xda/0x100
Modules linked in:
CPU: 1 PID: {pid} Comm: kworker/1:1 Not tainted 6.12.118 #1
RIP: 0010:debug_print_object+0xda/0x100
Call Trace:
 <TASK>
 ? __warn+0x9c/0x140
 debug_print_object+0xda/0x100
 __debug_check_no_obj_freed+0x1e6/0x250
 kfree+0x102/0x3b0
 css_free_rwork_fn+0x1f2/0x5a0
 process_one_work+0x5c4/0xe40
 </TASK>
---[ end trace 0000000000000000 ]---
"""

KMEMLEAK_61 = """\
# reviewbot-kmemleak: begin
unreferenced object 0xffff888004fc7800 (size 1024):
  comm "memcg_charge", pid 72, jiffies 4294892871
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
    01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace:
    [<000000004c6b8d0b>] kmalloc_trace+0x26/0x60
    [<0000000075c9c4b5>] mem_cgroup_css_alloc+0x6b/0x7c0
    [<00000000c3f9b2a4>] cgroup_apply_control_enable+0x1d2/0x4a0
    [<00000000a1b2c3d4>] cgroup_mkdir+0x27c/0x610
unreferenced object 0xffff888005a11000 (size 64):
  comm "swapper/0", pid 1, jiffies 4294667296
  hex dump (first 32 bytes):
    6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b  kkkkkkkkkkkkkkkk
  backtrace:
    [<00000000deadbeef>] __kmalloc+0x4b/0x150
    [<00000000feedface>] acpi_os_allocate_zeroed+0x2a/0x30
    [<00000000cafebabe>] acpi_ut_initialize_buffer+0x9a/0x120
# reviewbot-kmemleak: end
"""

KMEMLEAK_612 = """\
# reviewbot-kmemleak: begin
unreferenced object 0xffff888006bd2000 (size 1024):
  comm "memcg_charge", pid 81, jiffies 4294901234
  hex dump (first 32 bytes on cpu 1):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace (crc 5e2b1f0c):
    __kmalloc_cache_noprof+0x2b9/0x360
    mem_cgroup_css_alloc+0x6b/0x7c0
    cgroup_apply_control_enable+0x1d2/0x4a0
    cgroup_mkdir+0x27c/0x610
# reviewbot-kmemleak: end
"""


def _one(console: str) -> object:
    report = parse_console(console)
    assert len(report.splats) == 1, [s.title for s in report.splats]
    return report.splats[0]


def test_kasan_report_is_one_splat_to_its_closing_line() -> None:
    report = parse_console(_in_test(_stamp(KASAN.format(pid=45))))
    (splat,) = report.splats
    assert splat.kind == "kasan"
    assert splat.title == "BUG: KASAN: slab-use-after-free in css_put+0x2c/0xa0"
    assert splat.excerpt[-1].startswith("=====")  # to the end of the report, not 40 lines
    assert any("Freed by task" in line for line in splat.excerpt)
    # the test that printed "ok" while KASAN reported is failed, with the reason
    result = report.results["memcg_charge.dying_cgroups"]
    assert result.status == "fail" and "kasan" in result.diagnostics[-1]


def test_kasan_fingerprint_ignores_addresses_pids_and_times_but_not_the_access() -> None:
    first = parse_console(_stamp(KASAN.format(pid=45))).splats[0]
    again = parse_console(_stamp(KASAN.format(pid=311).replace("ffff888005a4c", "ffff888007e12"), 97.5)).splats[0]
    assert first.fingerprint == again.fingerprint
    write = parse_console(_stamp(KASAN.format(pid=45).replace("Read of size 8", "Write of size 8"))).splats[0]
    assert write.fingerprint != first.fingerprint
    elsewhere = parse_console(_stamp(KASAN.format(pid=45).replace(
        " mem_cgroup_css_free+0x4a/0x1c0", " obj_cgroup_release+0x4a/0x1c0"))).splats[0]
    assert elsewhere.fingerprint != first.fingerprint


def test_circular_locking_report_is_one_lockdep_splat_ending_at_its_stack_backtrace() -> None:
    console = _in_test(_stamp(CIRCULAR.format(pid=72)), test="v1_immigration") \
        + _stamp("memcg: unrelated kernel line after the report", 50.0)
    report = parse_console(console)
    (splat,) = report.splats
    assert splat.kind == "lockdep"
    assert splat.title == "WARNING: possible circular locking dependency detected"
    assert splat.excerpt[-1].strip() == "</TASK>"  # 70+ lines, kept whole, nothing after it
    assert splat.test == "v1_immigration"


def test_lockdep_fingerprint_names_the_locks_not_the_task() -> None:
    first = parse_console(_stamp(CIRCULAR.format(pid=72))).splats[0]
    again = parse_console(_stamp(CIRCULAR.format(pid=1044), 300.0)).splats[0]
    assert first.fingerprint == again.fingerprint
    other = parse_console(_stamp(CIRCULAR.format(pid=72).replace("cgroup_mutex", "cgroup_threadgroup_rwsem"))).splats[0]
    assert other.fingerprint != first.fingerprint


def test_suspicious_rcu_usage_is_lockdep_and_compared_without_line_numbers() -> None:
    splat = parse_console(_stamp(RCU.format(pid=72, line=481, function="mem_cgroup_from_task"))).splats[0]
    assert splat.kind == "lockdep" and splat.title == "WARNING: suspicious RCU usage"
    moved = parse_console(_stamp(RCU.format(pid=80, line=495, function="mem_cgroup_from_task"))).splats[0]
    assert moved.fingerprint == splat.fingerprint  # the series moved the header's lines
    # a different caller is a different bug, though the title and the file are the same
    other = parse_console(_stamp(RCU.format(pid=72, line=481, function="get_mem_cgroup_from_mm"))).splats[0]
    assert other.fingerprint != splat.fingerprint


def test_debug_objects_report_and_its_warning_are_one_splat() -> None:
    text = _stamp(ODEBUG.format(pid=52, ptr="00000000a1b2c3d4"))
    splat = _one(text)
    assert splat.kind == "debugobjects"  # type: ignore[attr-defined]
    assert splat.title.startswith("ODEBUG: free active (active state 0)")  # type: ignore[attr-defined]
    assert splat.excerpt[-1].startswith("---[ end trace")  # type: ignore[attr-defined]
    # the object's hashed pointer differs every boot
    again = _one(_stamp(ODEBUG.format(pid=60, ptr="0000000011223344")))
    assert again.fingerprint == splat.fingerprint  # type: ignore[attr-defined]


def test_kmemleak_block_gives_one_splat_per_unreferenced_object() -> None:
    console = "# reviewbot-run: memcg_charge\nok 1 anon_charge\n# reviewbot-exit: memcg_charge 0\n" \
        + KMEMLEAK_61 + "# reviewbot-guest: done uptime=80.1\n"
    report = parse_console(console)
    assert report.kmemleak_scanned
    assert [s.kind for s in report.splats] == ["kmemleak", "kmemleak"]
    leak = report.splats[0]
    assert leak.title == 'kmemleak: unreferenced object (size 1024) allocated by mem_cgroup_css_alloc (comm memcg_charge)'
    assert leak.program is None  # printed after the suite, not during a test
    assert leak_frames(leak.excerpt)[:2] == ["mem_cgroup_css_alloc", "cgroup_apply_control_enable"]
    assert report.results["memcg_charge.anon_charge"].status == "pass"


def test_kmemleak_records_of_6_1_and_6_12_fingerprint_alike() -> None:
    old = parse_console(KMEMLEAK_61).splats[0]
    new = parse_console(KMEMLEAK_612).splats[0]
    assert old.fingerprint == new.fingerprint  # same site; pointers, crc, pid and size aside
    assert new.title.startswith("kmemleak: unreferenced object (size 1024) allocated by mem_cgroup_css_alloc")


def test_no_kmemleak_block_means_no_scan() -> None:
    assert not parse_console("# reviewbot-guest: done uptime=3.0\n").kmemleak_scanned


def test_a_kernel_line_inside_the_kmemleak_block_is_read_as_kernel_output() -> None:
    block = KMEMLEAK_612.replace(
        "# reviewbot-kmemleak: end\n",
        "[   88.000000] kmemleak: 1 new suspected memory leaks (see /sys/kernel/debug/kmemleak)\n"
        "# reviewbot-kmemleak: end\n")
    report = parse_console(block)
    assert [s.kind for s in report.splats] == ["kmemleak"]
    assert not any("new suspected" in line for line in report.splats[0].excerpt)


def test_every_lockdep_title_of_the_kernel_is_recognised() -> None:
    titles = [
        "WARNING: possible recursive locking detected",
        "WARNING: inconsistent lock state",
        "WARNING: bad unlock balance detected!",
        "WARNING: possible irq lock inversion dependency detected",
        "WARNING: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected",
        "WARNING: held lock freed!",
        "WARNING: lock held when returning to user space!",
        "WARNING: Nested lock was not taken",
        "WARNING: memcg_charge/72 still has locks held!",
        "INFO: trying to register non-static key.",
    ]
    for title in titles:
        splat = _one(_stamp(title))
        assert splat.kind == "lockdep", title  # type: ignore[attr-defined]
        assert re.sub(r"\d+", "N", splat.title) == re.sub(r"\d+", "N", title)  # type: ignore[attr-defined]


def test_many_kmemleak_records_do_not_push_a_later_splat_out_of_the_report() -> None:
    from reviewbot.boot.compare import MAX_SPLATS, new_splats

    records = "".join(
        f"unreferenced object 0xffff888004fc{i:04x} (size 64):\n  backtrace:\n"
        f"    [<000000004c6b8d0b>] kmalloc_trace+0x26/0x60\n    [<0000000075c9c4b5>] site_{i}+0x6b/0x7c0\n"
        for i in range(MAX_SPLATS + 5))
    # boot 1 ends with its kmemleak report; boot 2 (the v1 test) then prints a lockdep report
    console = "# reviewbot-kmemleak: begin\n" + records + "# reviewbot-kmemleak: end\n" \
        + _stamp(RCU.format(pid=90, line=481, function="mem_cgroup_from_task"), 500.0)
    found = new_splats([parse_console("")], parse_console(console))
    assert len(found) == MAX_SPLATS
    assert found[0].kind == "lockdep"


# Printed by the debug kernel for mutant 06 (rcu_read_lock() left held in
# mm_update_next_owner()), 6.1.192 on TCG, 2026-12-06; registers and the BUG's trace cut.
MUTANT_06 = """\
[   13.354318]
[   13.354607] =============================
[   13.354749] WARNING: suspicious RCU usage
[   13.357333] 6.1.192 #1 Not tainted
[   13.357747] -----------------------------
[   13.357985] include/linux/rcupdate.h:417 Illegal context switch in RCU read-side critical section!
[   13.358228]
[   13.358228] other info that might help us debug this:
[   13.358228]
[   13.358566]
[   13.358566] rcu_scheduler_active = 2, debug_locks = 1
[   13.358978] 1 lock held by timeout/65:
[   13.359151]  #0: ffffffff8231cae0 (rcu_read_lock){....}-{1:2}, at: rcu_lock_acquire.constprop.0+0x7/0x25
[   13.360872]
[   13.360872] stack backtrace:
[   13.361147] CPU: 1 PID: 65 Comm: timeout Not tainted 6.1.192 #1
[   13.361578] Call Trace:
[   13.361578]  <TASK>
[   13.361578]  dump_stack_lvl+0x4c/0x5f
[   13.361578]  lockdep_rcu_suspicious+0x1bf/0x1ee
[   13.361578]  __might_resched+0x57/0x3f6
[   13.361578]  ? in_sched_functions+0x30/0x30
[   13.361578]  ? mm_update_next_owner+0x62/0x4b6
[   13.361578]  mmput+0x15/0x34
[   13.361578]  do_exit+0x9f4/0x1a49
[   13.361578]  do_group_exit+0x205/0x205
[   13.361578]  __x64_sys_exit_group+0x39/0x39
[   13.361578]  do_syscall_64+0x39/0x46
[   13.361578]  entry_SYSCALL_64_after_hwframe+0x4b/0xb5
[   13.361578]  </TASK>
[   13.366995] BUG: sleeping function called from invalid context at kernel/fork.c:1238
[   13.367258] in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 65, name: timeout
[   13.373937]
[   13.374042] ====================================
[   13.374187] WARNING: timeout/65 still has locks held!
[   13.374509] 6.1.192 #1 Tainted: G        W
[   13.374657] ------------------------------------
[   13.374783] 1 lock held by timeout/65:
[   13.374890]  #0: ffffffff8231cae0 (rcu_read_lock){....}-{1:2}, at: rcu_lock_acquire.constprop.0+0x7/0x25
[   13.375276]
[   13.375276] stack backtrace:
[   13.375572] CPU: 1 PID: 65 Comm: timeout Tainted: G        W          6.1.192 #1
[   13.375772] Call Trace:
[   13.375856]  <TASK>
[   13.375927]  dump_stack_lvl+0x4c/0x5f
[   13.376051]  do_exit+0x18be/0x1a49
[   13.376292]  do_group_exit+0x205/0x205
[   13.376782]  </TASK>
"""


def test_real_lockdep_reports_of_an_unbalanced_rcu_read_lock() -> None:
    report = parse_console(MUTANT_06)
    assert [(s.kind, s.title) for s in report.splats] == [
        ("lockdep", "WARNING: suspicious RCU usage"),
        ("bug", "BUG: sleeping function called from invalid context at kernel/fork.c:1238"),
        ("lockdep", "WARNING: timeout/65 still has locks held!"),
    ]
    rcu = report.splats[0]
    assert rcu.excerpt[-1].strip() == "</TASK>"  # its own report only, not the BUG after it
    # the same report from another task and another boot is the same splat; the
    # suspicious-usage message is part of what tells two RCU reports apart
    again = parse_console(MUTANT_06.replace("timeout/65", "test_kmem/998").replace("PID: 65", "PID: 998"))
    assert [s.fingerprint for s in again.splats] == [s.fingerprint for s in report.splats]
    other = parse_console(MUTANT_06.replace("Illegal context switch in RCU read-side critical section!",
                                            "suspicious rcu_dereference_check() usage!"))
    assert other.splats[0].fingerprint != rcu.fingerprint
