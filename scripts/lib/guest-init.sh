#!/bin/busybox sh
# /init of the guest's initramfs (scripts/guest-run): mount the host root read-only
# over virtiofs, load the modules (ublk_drv, nbd, network ones), chroot into it, run the command, power off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

fail() { echo "guest-init: $*"; poweroff -f; }

# In the order guest-run wrote: insmod resolves no dependencies.
for m in $(cat /modules/order); do insmod "/modules/$m.ko" || fail "insmod $m failed"; done
results=$(sed -n 's/.*nbdgate\.results=\([^ ]*\).*/\1/p' /proc/cmdline)
[ -n "$results" ] || fail "no nbdgate.results= on the kernel command line"

mount -t virtiofs hostroot /newroot -o ro || fail "mounting the host root failed"
# Keep the host's view of these directories, then cover them with tmpfs; paths the command needs
# that live there (a checkout under /tmp, say) are bound back from the host's view.
keep=$(sed -n 's/.*nbdgate\.keep=\([^ ]*\).*/\1/p' /proc/cmdline | tr ',' ' ')
for d in tmp run var/tmp; do
  host="/host-$(echo "$d" | tr / -)"
  mkdir -p "$host"
  mount -o bind "/newroot/$d" "$host" || fail "binding the host's /$d failed"
  mount -t tmpfs -o mode=1777 tmpfs "/newroot/$d" || fail "tmpfs on /$d failed"
  for k in $keep; do
    case "$k" in
      "/$d"/*) mkdir -p "/newroot$k" && mount -o bind "$host${k#/$d}" "/newroot$k" || fail "binding $k failed" ;;
    esac
  done
done
# After the tmpfs mounts, so a results directory under /tmp is not hidden by them.
mkdir -p "/newroot$results" 2>/dev/null
mount -t virtiofs results "/newroot$results" || fail "mounting the results share on $results failed"
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -o bind /dev "/newroot/dev"
mount -o bind /dev/pts "/newroot/dev/pts"
mount -o bind /dev/shm "/newroot/dev/shm"
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t tmpfs tmpfs /newroot/sys/fs/cgroup 2>/dev/null && mount -t cgroup2 cgroup2 /newroot/sys/fs/cgroup 2>/dev/null
ip link set lo up || fail "loopback did not come up"
# QEMU's user network (restricted: only the host's NBD exports at 10.0.2.100 answer; see guest-run).
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 || fail "eth0 did not come up"

chroot /newroot /bin/sh "$results/.guest/cmd.sh"
echo $? > "/newroot$results/.guest/exit-code"
sync
poweroff -f
