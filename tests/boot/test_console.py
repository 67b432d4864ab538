"""Console parsing: KTAP results, metrics, splats and their attribution to tests."""

from __future__ import annotations

from reviewbot.boot.console import parse_console, splat_fingerprint

CONSOLE = """\
[    0.000000] Linux version 6.1.192 (reviewbot@reviewbot)
# reviewbot-guest: up 6.1.192 cpus=2
# reviewbot-run: memcg_charge
KTAP version 1
1..3
# start anon_charge
# anon_charge: touched 16384 KB, cgroup anon 16400 KB
ok 1 anon_charge
# start threads_migrate
[   12.345678] BUG: scheduling while atomic: memcg_charge/77/0x00000002
[   12.345679] CPU: 1 PID: 77 Comm: memcg_charge Not tainted 6.1.192 #3
[   12.345680] Call Trace:
[   12.345681]  <TASK>
[   12.345682]  dump_stack_lvl+0x33/0x46
[   12.345683]  __schedule_bug+0x47/0x60
[   12.345684]  __schedule+0x5b3/0x6a0
[   12.345685]  do_task_dead+0x3e/0x40
[   12.345686]  do_exit+0x6f5/0x9d0
[   12.345687]  </TASK>
# threads_migrate: threads in A=0 B=5
ok 2 threads_migrate
# start clone_vm_shared
# metric clone_vm_shared.payer=owner
not ok 3 clone_vm_shared
# reviewbot-exit: memcg_charge 1
# reviewbot-run: test_memcontrol
TAP version 13
1..2
ok 1 test_memcg_subtree_control
ok 2 # SKIP test_memcg_swap_max
# reviewbot-exit: test_memcontrol 0
# reviewbot-guest: done
"""


def test_results_are_named_by_program_and_test() -> None:
    report = parse_console(CONSOLE)
    assert list(report.results) == [
        "memcg_charge.anon_charge",
        "memcg_charge.threads_migrate",
        "memcg_charge.clone_vm_shared",
        "test_memcontrol.test_memcg_subtree_control",
        "test_memcontrol.test_memcg_swap_max",
    ]
    assert report.results["memcg_charge.anon_charge"].status == "pass"
    assert report.results["memcg_charge.clone_vm_shared"].status == "fail"
    assert report.results["test_memcontrol.test_memcg_swap_max"].status == "skip"
    assert report.programs == {"memcg_charge": 1, "test_memcontrol": 0}


def test_a_test_the_kernel_has_no_feature_for_is_a_skip() -> None:
    # memcg_charge's v1_immigration on a kernel where charge moving is gone (7.x).
    text = ("# reviewbot-run: memcg_charge\nKTAP version 1\n1..1\n# start v1_immigration\n"
            "ok 1 v1_immigration # SKIP memory.move_charge_at_immigrate takes only 0: "
            "charge moving is gone\n# reviewbot-exit: memcg_charge 0\n")
    result = parse_console(text).results["memcg_charge.v1_immigration"]
    assert result.status == "skip"


def test_splat_during_a_passing_test_fails_it() -> None:
    report = parse_console(CONSOLE)
    result = report.results["memcg_charge.threads_migrate"]
    assert result.status == "fail"
    assert result.splats and result.splats[0].kind == "bug"
    assert report.splats[0].test == "threads_migrate"
    assert "do_task_dead" in "\n".join(report.splats[0].excerpt)


def test_metrics_are_collected() -> None:
    assert parse_console(CONSOLE).metrics == {"clone_vm_shared.payer": "owner"}


def test_fingerprint_ignores_pids_addresses_and_timestamps() -> None:
    a = ["BUG: scheduling while atomic: memcg_charge/77/0x00000002", " __schedule+0x5b3/0x6a0", " do_exit+0x6f5/0x9d0"]
    b = ["BUG: scheduling while atomic: memcg_charge/912/0x00000002", " __schedule+0x5c1/0x6b0", " do_exit+0x6f0/0x9d0"]
    c = ["BUG: scheduling while atomic: memcg_charge/77/0x00000002", " __schedule+0x5b3/0x6a0", " do_group_exit+0x1/0x9"]
    assert splat_fingerprint("bug", a) == splat_fingerprint("bug", b)
    assert splat_fingerprint("bug", a) != splat_fingerprint("bug", c)


def test_every_documented_splat_kind_is_detected() -> None:
    lines = {
        "panic": "Kernel panic - not syncing: Fatal exception",
        "oops": "Oops: 0000 [#1] SMP",
        "bug": "BUG: kernel NULL pointer dereference, address: 0000000000000008",
        "warning": "WARNING: CPU: 0 PID: 1 at mm/memcontrol.c:123 mem_cgroup_css_free+0x1/0x2",
        "kasan": "BUG: KASAN: use-after-free in css_put+0x1/0x2",
        "lockdep": "WARNING: suspicious RCU usage",
        "rcu-stall": "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:",
        "hung-task": "INFO: task memcg_charge:81 blocked for more than 20 seconds.",
        "refcount": "refcount_t: underflow; use-after-free.",
    }
    for kind, line in lines.items():
        text = f"# reviewbot-run: p\n[ 1.0] {line}\n[ 1.1] ---[ end trace 0000000000000000 ]---\n"
        splats = parse_console(text).splats
        assert [s.kind for s in splats] == [kind], line


def test_oom_kill_report_is_not_a_splat() -> None:
    text = "[ 5.1] test_memcontrol invoked oom-killer: gfp_mask=0xcc0\n[ 5.2] Call Trace:\n"
    assert parse_console(text).splats == []
