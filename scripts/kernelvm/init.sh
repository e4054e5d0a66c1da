#!/bin/busybox sh
# PID 1 of the offload tier's VM (the initramfs holds only busybox, the
# modules and this). It mounts the host's root, shared read-only over
# virtio-9p (tag "host"), with tmpfs on /run and /tmp so that the host's
# own Open vSwitch, iproute2 and the probe (in the cache, under /var) run unchanged in a chroot, mounts
# the run directory (tag "run", read-write) on /tmp/vpf, and runs the guest
# script the run directory names in its `guest` file. Powers off at the end.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
while read -r m; do
	insmod /lib/modules/$m.ko 2>/dev/null || echo "init: insmod $m failed" >/dev/console
done </lib/modules/order
H=/host
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 host $H || echo "init: 9p host failed" >/dev/console
for d in run tmp; do mount -t tmpfs $d $H/$d; done
mount -t proc proc $H/proc
mount -t sysfs sys $H/sys
mount -t devtmpfs dev $H/dev
mkdir -p $H/tmp/vpf
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 run $H/tmp/vpf || echo "init: 9p run failed" >/dev/console
# The checkout (tag "repo") at its host path: under /tmp it would be hidden by the tmpfs.
repo=$(sed -n 's/^REPO=//p' $H/tmp/vpf/config)
if [ -n "$repo" ]; then
	mkdir -p $H$repo 2>/dev/null
	mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 repo $H$repo || echo "init: 9p repo failed" >/dev/console
fi
echo "init $(cut -d' ' -f1 /proc/uptime)" >$H/tmp/vpf/timing
chroot $H /bin/sh "$(cat $H/tmp/vpf/guest)" /tmp/vpf >$H/tmp/vpf/guest.log 2>&1
sync
umount $H/tmp/vpf
[ -n "$repo" ] && umount $H$repo
echo VPF-KERNELVM-DONE >/dev/console
poweroff -f
