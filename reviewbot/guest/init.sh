#!/bin/busybox sh
# reviewbot guest init (PID 1). Sets up the mounts the tests need, runs every program listed
# in /etc/reviewbot/suite one after another, each framed by "# reviewbot-run: NAME" and
# "# reviewbot-exit: NAME RC" lines on the serial console, then `reboot -f`: QEMU runs with
# -no-reboot, so the reboot makes it exit.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
# cgroup v2 without "+memory": the v1 charge test mounts the memory controller on v1 first.
mount -t cgroup2 none /sys/fs/cgroup
ip link set lo up
# Swap on the first brd RAM disk: memory.swap.* exist and test_memcontrol's swap tests run.
mkswap /dev/ram0 >/dev/null && swapon /dev/ram0
# ext2 on the second RAM disk: real, reclaimable page cache for test_memcontrol's file tests
# (the initramfs root is tmpfs, whose pages are not page cache that reclaim can drop).
mke2fs -q /dev/ram1 && mount -t ext2 /dev/ram1 /scratch
echo 1 > /proc/sys/kernel/printk_ratelimit 2>/dev/null
echo "# reviewbot-guest: up $(uname -r) cpus=$(nproc) $(grep MemTotal /proc/meminfo)"
timeout_s=$(cat /etc/reviewbot/timeout 2>/dev/null || echo 300)
while read -r name cmd; do
	[ -z "$name" ] && continue
	echo "# reviewbot-run: $name"
	cd /scratch
	timeout "$timeout_s" $cmd
	rc=$?
	cd /
	echo "# reviewbot-exit: $name $rc"
done < /etc/reviewbot/suite
echo "# reviewbot-guest: done"
sync
reboot -f
