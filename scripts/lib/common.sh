# Shared helpers for nbdgate's scripts. Source it; it defines functions only.
# Everything the project needs on a machine is installed from here, so a fresh
# Debian 12 box (CI) gets the same setup as a developer's.

NBDGATE_ROOT=${NBDGATE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
NBDGATE_CACHE=${NBDGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nbdgate}
# The guest kernel: Debian trixie-backports' cloud flavour has ublk_drv (7.2, AUTO_BUF_REG, RECV on fixed buffers).
GUEST_KERNEL_VERSION=${GUEST_KERNEL_VERSION:-7.2.12+deb13-cloud-amd64}

die() { echo "nbdgate: $*" >&2; exit 1; }
log() { echo "[nbdgate] $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

_apt_updated=""
apt_update_once() {
  [ -n "$_apt_updated" ] && return 0
  as_root apt-get update -qq >/dev/null || die "apt-get update failed"
  _apt_updated=1
}

# ensure_packages PKG... : installs the Debian packages that are missing (bookworm only).
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  apt_update_once
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# qemu_utils_bpo_dir: prints a directory holding qemu-nbd / qemu-img / qemu-io 10.x
# (bookworm-backports; NBD extended headers). They are unpacked into the cache with
# apt-get download, never installed: qemu-utils 10 breaks bookworm's qemu-system-common,
# whose C virtiofsd the guest runner needs. A pin keeps apt from ever installing them.
qemu_utils_bpo_dir() {
  local dir="$NBDGATE_CACHE/qemu-utils-bpo"
  if [ -f "$dir/.complete" ]; then echo "$dir/usr/bin"; return 0; fi
  local src=/etc/apt/sources.list.d/nbdgate-bookworm-backports.sources
  local pin=/etc/apt/preferences.d/nbdgate-bookworm-backports
  [ -f "$pin" ] || as_root tee "$pin" >/dev/null <<PIN
# nbdgate: the guest runner needs bookworm's QEMU 7.2 (it ships the C virtiofsd);
# newer qemu-utils is only unpacked into a cache with apt-get download.
Package: qemu-* src:qemu
Pin: release n=bookworm-backports
Pin-Priority: -1
PIN
  add_apt_source "$src" bookworm-backports
  apt_update_once
  local dl; dl=$(mktemp -d); chmod 777 "$dl"
  log "downloading qemu-utils from bookworm-backports (apt-get download, unpacked into $dir)"
  ( cd "$dl" && apt-get download -qq qemu-utils/bookworm-backports >/dev/null 2>&1 ) \
    || { rm -rf "$dl"; die "apt-get download qemu-utils/bookworm-backports failed"; }
  rm -rf "$dir"; dpkg-deb -x "$dl"/qemu-utils_*.deb "$dir" && rm -rf "$dl"
  "$dir/usr/bin/qemu-nbd" --version >/dev/null || die "the unpacked qemu-nbd does not run"
  touch "$dir/.complete"
  echo "$dir/usr/bin"
}

# udev_dir: prints a directory holding udevadm (which runs as systemd-udevd by that name), unpacked from
# Debian's udev package with apt-get download and never installed: the guest runs a udevd of its own for the
# rootless test (the rule in conf/99-nbdgate-rootless.rules), and the host needs no udev.
udev_dir() {
  local dir="$NBDGATE_CACHE/udev"
  if [ -f "$dir/.complete" ]; then echo "$dir/bin"; return 0; fi
  apt_update_once
  local dl; dl=$(mktemp -d); chmod 777 "$dl"
  log "downloading udev (apt-get download, unpacked into $dir)"
  ( cd "$dl" && apt-get download -qq udev >/dev/null 2>&1 ) || { rm -rf "$dl"; die "apt-get download udev failed"; }
  rm -rf "$dir"; dpkg-deb -x "$dl"/udev_*.deb "$dir" && rm -rf "$dl"
  "$dir/bin/udevadm" --version >/dev/null || die "the unpacked udevadm does not run"
  touch "$dir/.complete"
  echo "$dir/bin"
}

# add_apt_source FILE SUITE: a deb822 source for SUITE on the host's Debian mirror (once).
add_apt_source() {
  [ -f "$1" ] && return 0
  as_root tee "$1" >/dev/null <<SRC
Types: deb
URIs: $(debian_mirror_uri)
Suites: $2
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  _apt_updated=""
}

debian_mirror_uri() {
  local uri
  uri=$(sed -n 's/^URIs: *\(.*debian\/*\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n1)
  echo "${uri:-http://deb.debian.org/debian}"
}

# java_home: prints a JDK >= 22 home, or dies with one line.
java_home() {
  local c v
  for c in ${JAVA_HOME:+"$JAVA_HOME"} /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/java-25-openjdk-amd64 /usr/lib/jvm/*; do
    [ -x "$c/bin/java" ] && [ -x "$c/bin/javac" ] || continue
    v=""
    [ -f "$c/release" ] && v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$c/release" | head -n1) # no JVM start
    [ -n "$v" ] || v=$("$c/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n1)
    if [ -n "$v" ] && [ "$v" -ge 22 ]; then echo "$c"; return 0; fi
  done
  die "no JDK 22 or newer found (FFM needs it); install Temurin 25 or set JAVA_HOME"
}

# Kernel modules the guest loads, in this order: busybox insmod resolves no dependencies, so a module
# comes after the ones it needs (tcp_diag after inet_diag; vsock_loopback after vsock and
# vmw_vsock_virtio_transport_common). veth and sch_netem give tests a network of their own (namespaces,
# partitions, loss); inet_diag and tcp_diag let `ss -K` reset one TCP connection; tls and vsock are for
# kernel TLS and AF_VSOCK exports; virtio_net (after failover and net_failover) reaches the host's exports.
GUEST_MODULES=(ublk_drv nbd veth sch_netem inet_diag tcp_diag tls vsock vmw_vsock_virtio_transport_common vsock_loopback
  failover net_failover virtio_net)
# Not loaded at boot, unpacked beside the others for the tests that need them (modules/on-demand lists them
# in load order; test-ublk passes the directory as nbdgate.guestModules): kernel TLS allocates its ciphers
# when the keys arrive, and nothing autoloads them in the guest. gcm(aes) needs ctr and gcm (aesni-intel
# after gf128mul), chacha20poly1305 needs libchacha, chacha and libpoly1305.
GUEST_ON_DEMAND_MODULES=(gf128mul ctr gcm aesni-intel libchacha chacha libpoly1305 chacha20poly1305)

# guest_kernel_dir: fetches (once) the trixie-backports kernel + modules with apt-get download and
# unpacks vmlinuz and GUEST_MODULES (decompressed, with their load order in modules/order) into the
# cache; a changed module list fetches again. Never installs anything from trixie: that would upgrade libc.
guest_kernel_dir() {
  local dir="$NBDGATE_CACHE/guest-kernel/$GUEST_KERNEL_VERSION"
  if [ -f "$dir/.complete" ] && [ "$(cat "$dir/modules/order" 2>/dev/null)" = "${GUEST_MODULES[*]}" ] \
     && [ "$(cat "$dir/modules/on-demand" 2>/dev/null)" = "${GUEST_ON_DEMAND_MODULES[*]}" ]; then
    echo "$dir"; return 0
  fi
  local src=/etc/apt/sources.list.d/nbdgate-trixie-backports.sources
  local pin=/etc/apt/preferences.d/nbdgate-trixie-backports
  add_apt_source "$src" trixie-backports
  # Priority 1: apt never picks a trixie package by itself; we only 'apt-get download' by name.
  [ -f "$pin" ] || as_root tee "$pin" >/dev/null <<PIN
Package: *
Pin: release n=trixie-backports
Pin-Priority: 1
PIN
  apt_update_once
  local dl; dl=$(mktemp -d)
  log "downloading guest kernel $GUEST_KERNEL_VERSION (trixie-backports, apt-get download)"
  ( cd "$dl" && chmod 777 "$dl" && apt-get download -qq \
      "linux-binary-$GUEST_KERNEL_VERSION" "linux-modules-$GUEST_KERNEL_VERSION" >/dev/null ) \
    || { rm -rf "$dl"; die "apt-get download of linux-binary/linux-modules-$GUEST_KERNEL_VERSION failed"; }
  rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
  local deb; for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$dir.tmp/root"; done
  rm -rf "$dl"
  local kver; kver=$(ls "$dir.tmp/root/usr/lib/modules" | head -n1)
  cp "$dir.tmp/root/usr/lib/modules/$kver/vmlinuz" "$dir.tmp/vmlinuz" 2>/dev/null \
    || cp "$dir.tmp"/root/boot/vmlinuz-* "$dir.tmp/vmlinuz" || die "no vmlinuz in the kernel package"
  mkdir -p "$dir.tmp/modules"
  local m f
  for m in "${GUEST_MODULES[@]}" "${GUEST_ON_DEMAND_MODULES[@]}"; do
    f=$(find "$dir.tmp/root/usr/lib/modules/$kver" -name "$m.ko*" | head -n1)
    [ -n "$f" ] || die "module $m not found in linux-modules-$GUEST_KERNEL_VERSION"
    case "$f" in
      *.xz) xz -dc "$f" > "$dir.tmp/modules/$m.ko" ;;
      *.zst) zstd -qdc "$f" > "$dir.tmp/modules/$m.ko" ;;
      *) cp "$f" "$dir.tmp/modules/$m.ko" ;;
    esac
  done
  echo "${GUEST_MODULES[*]}" > "$dir.tmp/modules/order"
  echo "${GUEST_ON_DEMAND_MODULES[*]}" > "$dir.tmp/modules/on-demand"
  echo "$kver" > "$dir.tmp/kernel-release"
  rm -rf "$dir.tmp/root" "$dir"; mv "$dir.tmp" "$dir"; touch "$dir/.complete"
  echo "$dir"
}

# Packages the guest runner needs on the host (bookworm): QEMU 7.2 ships the C virtiofsd.
GUEST_HOST_PACKAGES=(qemu-system-x86 qemu-system-common busybox-static cpio gzip xz-utils iproute2 nbdkit)
# Packages the tests use (on the host and, through the shared root, in the guest); iproute2's ip, tc
# and ss build the guest tests' networks (namespaces, veth, netem) and reset connections.
TEST_PACKAGES=(fio e2fsprogs nbdkit nbd-server nbd-client libnbd-bin qemu-utils util-linux procps iproute2)
