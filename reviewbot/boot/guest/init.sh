#!/bin/busybox sh
# reviewbot guest init (PID 1). Stage 1 copies the initramfs onto an ext2 file system on the
# second RAM disk and switches root to it: test_kmem_basic fills the dcache with negative
# dentries from stat() on missing paths under /, which tmpfs/ramfs never keep (their
# dentries are deleted at once), so the test can only pass on a disk file system root.
# Stage 2 sets up the mounts the tests need, runs every program listed in
# /etc/reviewbot/suite one after another, each framed by "# reviewbot-run: NAME" and
# "# reviewbot-exit: NAME RC" lines on the serial console, then `reboot -f`: QEMU runs with
# -no-reboot, so the reboot makes it exit.
/bin/busybox --install -s /bin
export PATH=/bin

if [ "$1" != stage2 ]; then
	mount -t devtmpfs devtmpfs /dev
	mkdir -p /newroot
	if mke2fs -q /dev/ram1 && mount -t ext2 /dev/ram1 /newroot; then
		cp -a /bin /etc /init /newroot/
		[ -d /lib ] && cp -a /lib /lib64 /newroot/
		mkdir -p /newroot/dev /newroot/proc /newroot/sys /newroot/tmp /newroot/mnt \
			/newroot/scratch /newroot/root
		umount /dev
		exec switch_root /newroot /init stage2
	fi
	echo "# reviewbot-guest: no ext2 root (no /dev/ram1?), staying on the initramfs"
	umount /dev
fi

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
# cgroup v2; memcg_charge enables "+memory" itself and hands the controller to v1 for its
# last test, then back.
mount -t cgroup2 none /sys/fs/cgroup
# debugfs, where a debug kernel's kmemleak report is read (absent on the fast profile)
grep -qw debugfs /proc/filesystems && mount -t debugfs debugfs /sys/kernel/debug
ip link set lo up
# Swap on the first brd RAM disk: memory.swap.* exist and test_memcontrol's swap tests run.
mkswap /dev/ram0 >/dev/null && swapon /dev/ram0
echo "# reviewbot-guest: up $(uname -r) cpus=$(nproc) uptime=$(cut -d' ' -f1 /proc/uptime) root=$(stat -f -c %T /) $(grep MemTotal /proc/meminfo)"
timeout_s=$(cat /etc/reviewbot/timeout 2>/dev/null || echo 300)
# gcov (build.coverage): the patched kernel's touched objects count every line they run.
# The counters are reset before each program and dumped after it, so each count says which
# program ran the line. A dump is gzip + base64 between marker lines, with the md5 of the
# raw file: kernel messages can interleave with it on the serial console, and the host keeps
# only dumps whose checksum holds. debugfs hands out a snapshot per open, so the file is
# copied once and every later step reads the copy.
gcov=/sys/kernel/debug/gcov
gcov_dump() {
	find $gcov -name '*.gcda' | while read -r f; do
		cat "$f" > /tmp/reviewbot.gcda || continue
		echo "# reviewbot-gcov: begin $1 ${f#$gcov} $(md5sum < /tmp/reviewbot.gcda | cut -d' ' -f1)"
		gzip -c < /tmp/reviewbot.gcda | base64
		echo "# reviewbot-gcov: end"
	done
	rm -f /tmp/reviewbot.gcda
}
while read -r name cmd; do
	[ -z "$name" ] && continue
	[ -w $gcov/reset ] && echo 1 > $gcov/reset
	echo "# reviewbot-run: $name"
	# the selftests create their O_TMPFILE page-cache files in the working directory
	cd /scratch
	timeout "$timeout_s" $cmd </dev/null
	rc=$?
	cd /
	echo "# reviewbot-exit: $name $rc"
	[ -w $gcov/reset ] && gcov_dump "$name"
done < /etc/reviewbot/suite
if [ -w /sys/kernel/debug/kmemleak ]; then
	# kmemleak (debug profile): an object is reported once a scan found no pointer to it and
	# it is older than 5 s. The last test's cgroups are freed through RCU and work items, so
	# wait, then scan twice: the report lists only objects still unreferenced in the last scan.
	sleep 5
	echo scan > /sys/kernel/debug/kmemleak
	echo scan > /sys/kernel/debug/kmemleak
	echo "# reviewbot-kmemleak: begin"
	cat /sys/kernel/debug/kmemleak
	echo "# reviewbot-kmemleak: end"
fi
echo "# reviewbot-guest: done uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
reboot -f
