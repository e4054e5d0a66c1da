#!/usr/bin/env bash
# Installs and builds what the offload test tier (test/offload/) needs, as root,
# idempotently (a no-op run takes well under a second):
#   - Debian packages, only when missing: qemu-system-x86, gcc + libc6-dev
#     (the probe), kmod (depmod), Open vSwitch and iproute2 (the guest runs the
#     host's own binaries, shared read-only over virtio-9p);
#   - Debian's stock kernel (what linux-image-amd64 depends on) and
#     busybox-static, fetched with `apt-get download` and unpacked into the
#     cache, never installed (a kernel's hooks would rebuild this host's
#     initramfs and bootloader; busybox-static conflicts with busybox);
#   - a small initramfs (busybox, the modules the tier needs, init.sh) and the
#     probe (probe.c), under $VPF_KERNELVM_CACHE/<kernel version>/.
# Prints the ready directory on its last line.
#
#   deps.sh [stock|skbext]
# skbext: the same Debian kernel built from its source with
# CONFIG_NET_TC_SKB_EXT=y (skbext.sh), for the flows that recirculate.
#
# Env: VPF_KERNELVM_CACHE (default /var/cache/vpf-kernelvm),
#      VPF_KERNELVM_KPKG (a kernel package other than linux-image-amd64's).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
FLAVOR=${1:-stock}
case $FLAVOR in stock | skbext) ;; *) echo "usage: deps.sh [stock|skbext]" >&2; exit 2 ;; esac
ROOT=${VPF_KERNELVM_CACHE:-/var/cache/vpf-kernelvm}
mkdir -p "$ROOT/debs"
log() { echo "kernelvm/deps.sh: $*" >&2; }
exec 9>"$ROOT/.lock"
flock 9

# Modules the guest loads (dependencies come from modules.dep): the two 9p
# shares, veth ports, the OVS kernel datapath, and everything OVS's tc offload
# (lib/netdev-offload-tc.c) may ask of tc: flower, its actions, conntrack.
MODULES=(
	virtio_pci 9pnet_virtio 9p
	veth openvswitch nf_conntrack_netlink nfnetlink_cttimeout
	sch_ingress cls_flower
	act_gact act_mirred act_vlan act_pedit act_csum act_tunnel_key act_police
	act_ct act_skbedit act_sample act_mpls act_gate
)

updated=0
apt_update() { [ $updated = 1 ] || { log "apt-get update"; apt-get update -qq >&2; updated=1; }; }
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v depmod >/dev/null || need+=(kmod)
command -v gcc >/dev/null || need+=(gcc)
[ -e /usr/include/linux/openvswitch.h ] && [ -e /usr/include/stdio.h ] || need+=(libc6-dev linux-libc-dev)
command -v ovs-vswitchd >/dev/null || need+=(openvswitch-switch)
command -v tc >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
	apt_update
	log "apt-get install ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# fetch PKG DEST: `apt-get download` (never install) and unpack into DEST.
fetch() {
	local pkg=$1 dest=$2 deb
	[ -f "$dest/.unpacked" ] && return 0
	deb=$(ls "$ROOT"/debs/"${pkg}"_*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$deb" ]; then
		(cd "$ROOT/debs" && apt-get download -o APT::Sandbox::User=root "$pkg" >&2) ||
			{ apt_update; (cd "$ROOT/debs" && apt-get download -o APT::Sandbox::User=root "$pkg" >&2); }
		deb=$(ls "$ROOT"/debs/"${pkg}"_*.deb | head -n1)
	fi
	rm -rf "$dest" && mkdir -p "$dest"
	dpkg-deb -x "$deb" "$dest"
	touch "$dest/.unpacked"
	log "unpacked $(basename "$deb")"
}

# closure MODDIR: the modules MODULES need, as "name path" lines from
# MODDIR/modules.dep, which lists each module's dependencies, deepest last:
# those first, each once (kmod's own order). crc32c_generic first: libcrc32c
# (openvswitch, nf_conntrack) asks for it.
closure() {
	local moddir=$1 m
	declare -A seen=()
	visit() {
		local m=${1//-/_} line dep
		[ -n "${seen[$m]:-}" ] && return 0
		seen[$m]=1
		line=$(grep -E "(^|/)${m}\.ko(\.xz|\.zst)?:" "$moddir/modules.dep" | head -n1 || true)
		[ -n "$line" ] || { log "module $m not found"; return 1; }
		for dep in $(echo "${line#*:}" | tr ' ' '\n' | tac); do
			dep=$(basename "$dep")
			visit "${dep%%.ko*}" || return 1
		done
		echo "$m ${line%%:*}"
	}
	for m in crc32c_generic "${MODULES[@]}"; do visit "$m" || return 1; done
}

# apt-cache costs ~6 s: the resolved package is remembered (VPF_KERNELVM_REFRESH=1 asks again)
KPKG=${VPF_KERNELVM_KPKG:-}
[ -n "$KPKG" ] || [ -n "${VPF_KERNELVM_REFRESH:-}" ] || KPKG=$(cat "$ROOT/kpkg" 2>/dev/null || true)
if [ -z "$KPKG" ]; then
	KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}' || true)
	[ -n "$KPKG" ] || { apt_update; KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}'); }
fi
echo "$KPKG" >"$ROOT/kpkg"
KVER=${KPKG#linux-image-}
C=$ROOT/$KVER
mkdir -p "$C"
fetch "$KPKG" "$C/kernel"
MODDIR=$C/kernel/lib/modules/$KVER
[ -f "$MODDIR/modules.dep" ] || { log "depmod $KVER"; depmod -b "$C/kernel" "$KVER"; }
if [ "$FLAVOR" = skbext ]; then
	# built from the stock package's config and module closure (skbext.sh)
	needed=$(closure "$MODDIR" | cut -d' ' -f1 | tr '\n' ' ')
	KVER=$(bash "$HERE/skbext.sh" "$ROOT" "$C/kernel" "$KVER" "$(ls "$ROOT"/debs/"${KPKG}"_*.deb | head -n1)" "${MODULES[*]}" "$needed")
	C=$ROOT/$KVER
	MODDIR=$C/kernel/lib/modules/$KVER
fi
fetch busybox-static "$ROOT/busybox"
BB=$ROOT/busybox/bin/busybox

# The probe runs inside the guest's chroot (the host's root), so a dynamic
# binary is fine; it is rebuilt when its source changes.
if [ ! -x "$C/probe" ] || [ "$HERE/probe.c" -nt "$C/probe" ]; then
	log "compiling probe"
	gcc -O2 -Wall -Wextra -o "$C/probe.tmp" "$HERE/probe.c"
	mv "$C/probe.tmp" "$C/probe"
fi

stamp=$({ echo "$KVER ${MODULES[*]}"; sha256sum "$HERE/init.sh" "$BB"; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$C/initramfs.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -f "$C/initramfs.cpio" ]; then
	log "building initramfs"
	T=$(mktemp -d "$C/initramfs.XXXXXX")
	mkdir -p "$T/bin" "$T/lib/modules" "$T/proc" "$T/sys" "$T/dev" "$T/host"
	cp "$BB" "$T/bin/busybox"
	cp "$HERE/init.sh" "$T/init"
	chmod 755 "$T/init" "$T/bin/busybox"
	closure "$MODDIR" >"$T/modules"
	while read -r m path; do
		case $path in
		*.xz) xz -dc "$MODDIR/$path" >"$T/lib/modules/$m.ko" ;;
		*.zst) zstd -qdc "$MODDIR/$path" >"$T/lib/modules/$m.ko" ;;
		*) cp "$MODDIR/$path" "$T/lib/modules/$m.ko" ;;
		esac
	done <"$T/modules"
	cut -d' ' -f1 "$T/modules" >"$T/lib/modules/order"
	rm "$T/modules"
	(cd "$T" && find . | "$BB" cpio -o -H newc 2>/dev/null) >"$C/initramfs.cpio.tmp"
	mv "$C/initramfs.cpio.tmp" "$C/initramfs.cpio"
	rm -rf "$T"
	cp "$C/kernel/boot/vmlinuz-$KVER" "$C/vmlinuz"
	# skbext.sh leaves the ELF it built; a stock package has only the bzImage
	[ -f "$C/kernel/boot/vmlinux-$KVER" ] && cp "$C/kernel/boot/vmlinux-$KVER" "$C/vmlinux" || {
	# The bzImage's ELF payload: qemu boots it through its PVH note, which
	# skips ~5 s of self-decompression under TCG (vmlinuz is the fallback).
	# Debian's amd64 kernels are xz-compressed: try each xz magic.
	rm -f "$C/vmlinux"
	python3 - "$C/vmlinuz" "$C/vmlinux" <<'PY' || log "no ELF vmlinux found: booting vmlinuz"
import lzma, os, sys
d = open(sys.argv[1], "rb").read()
i = d.find(b"\xfd7zXZ\x00")
while i >= 0:
    try:
        out = lzma.LZMADecompressor().decompress(d[i:])
    except lzma.LZMAError:
        out = b""
    if out[:4] == b"\x7fELF":
        open(sys.argv[2] + ".tmp", "wb").write(out)
        os.replace(sys.argv[2] + ".tmp", sys.argv[2])
        sys.exit(0)
    i = d.find(b"\xfd7zXZ\x00", i + 1)
sys.exit(1)
PY
	}
	echo "$stamp" >"$C/initramfs.stamp"
fi
[ "$FLAVOR" != stock ] || echo "$KVER" >"$ROOT/current"
log "ready: kernel $KVER, $(du -h "$C/initramfs.cpio" | cut -f1) initramfs"
echo "$C"
