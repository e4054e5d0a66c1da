#!/usr/bin/env bash
# Builds the offload tier's second kernel: Debian's own kernel source and
# config (the same version as the stock image), with one option changed,
# CONFIG_NET_TC_SKB_EXT=y. Debian leaves it off, and without it the openvswitch
# module refuses OVS_DP_F_TC_RECIRC_SHARING (net/openvswitch/datapath.c), so
# OVS's tc offload takes no flow that recirculates ("recirc_id sharing not
# supported", lib/netdev-offload-tc.c): nothing after a ct can be proven on
# the stock kernel. Distributions that ship OVS hardware offload (RHEL,
# Ubuntu) set it.
#
# Only the build is trimmed, never the code that runs: modules the tier does
# not load are left out (make localmodconfig over the stock modules.dep
# closure of $MODULES), and so is debug info. Built once, ~16 min on 2 cores;
# the cache keeps the kernel image, its modules and a stamp, not the tree.
#
#   skbext.sh ROOT STOCK_KERNEL_DIR STOCK_KVER STOCK_DEB "MODULES..." "NEEDED..."
# MODULES: what the tier loads (deps.sh); NEEDED: those with their
# dependencies, deps.sh's closure over the stock kernel's modules.dep.
# Prints the built kernel's release (its cache directory is ROOT/<release>).
set -euo pipefail
ROOT=$1 STOCK=$2 SKVER=$3 SDEB=$4 MODULES=$5 NEEDED=$6
log() { echo "kernelvm/skbext.sh: $*" >&2; }

VERSION=$(dpkg-deb -f "$SDEB" Version)  # e.g. 6.1.192-3: linux-source-6.1 of the same upload
SERIES=$(echo "$SKVER" | cut -d. -f1-2)
SUFFIX=-vpf-skbext
FRAGMENT="NET_TC_SKB_EXT=y DEBUG_INFO_NONE=y MODULE_SIG_ALL=n LOCALVERSION=$SUFFIX"
# Bump when the recipe below changes what is built (a comment edit must not cost a rebuild).
RECIPE=1
stamp=$(echo "$VERSION $SERIES $FRAGMENT $MODULES recipe $RECIPE" | sha256sum | cut -d' ' -f1)
for d in "$ROOT"/*"$SUFFIX"; do
	if [ -f "$d/build.stamp" ] && [ "$(cat "$d/build.stamp")" = "$stamp" ]; then
		basename "$d"
		exit 0
	fi
done

need=()
for c in make gcc flex bison bc xz perl; do command -v $c >/dev/null || need+=($c); done
[ -e /usr/include/libelf.h ] || need+=(libelf-dev)
[ -e /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
if [ ${#need[@]} -gt 0 ]; then
	pkgs=$(printf '%s\n' "${need[@]}" | sed 's/^xz$/xz-utils/' | tr '\n' ' ')
	log "apt-get install $pkgs"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >&2 ||
		{ apt-get update -qq >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >&2; }
fi

B=$(mktemp -d "$ROOT/build.XXXXXX")
trap 'rm -rf "$B"' EXIT
deb=$(ls "$ROOT"/debs/linux-source-"$SERIES"_"${VERSION//:/%3a}"_all.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
	(cd "$ROOT/debs" && apt-get download -o APT::Sandbox::User=root "linux-source-$SERIES=$VERSION" >&2)
	deb=$(ls "$ROOT"/debs/linux-source-"$SERIES"_*_all.deb | head -n1)
fi
log "unpacking $(basename "$deb")"
dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/linux-source-$SERIES.tar.xz" | tar -xJ -C "$B"
K=$B/linux-source-$SERIES

# The stock config, trimmed to the modules the tier loads (lsmod's format).
cp "$STOCK/boot/config-$SKVER" "$K/.config"
{
	echo "Module Size Used by"
	for m in $NEEDED; do echo "$m 16384 0"; done
} >"$B/lsmod"
# (its questions on options the stock config leaves unset take their defaults)
make -C "$K" -s LSMOD="$B/lsmod" localmodconfig </dev/null >"$B/config.log" 2>&1
# Debian's signing keys are not in the source; unsigned modules load (no MODULE_SIG_FORCE).
"$K/scripts/config" --file "$K/.config" --enable NET_TC_SKB_EXT \
	--disable DEBUG_INFO --disable DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT --disable DEBUG_INFO_DWARF4 \
	--disable DEBUG_INFO_DWARF5 --enable DEBUG_INFO_NONE --disable DEBUG_INFO_BTF \
	--set-str SYSTEM_TRUSTED_KEYS "" --set-str SYSTEM_REVOCATION_KEYS "" --disable MODULE_SIG_ALL \
	--set-str LOCALVERSION "$SUFFIX" --disable LOCALVERSION_AUTO
make -C "$K" -s olddefconfig >>"$B/config.log" 2>&1
grep -q '^CONFIG_NET_TC_SKB_EXT=y' "$K/.config" || { log "CONFIG_NET_TC_SKB_EXT did not stick"; exit 1; }
log "building Debian $VERSION + CONFIG_NET_TC_SKB_EXT=y"
t0=$(date +%s)
make -C "$K" -s -j"$(nproc)" vmlinux bzImage modules >"$B/build.log" 2>&1 || { tail -n 40 "$B/build.log" >&2; exit 1; }
# the release (with LOCALVERSION) is known once the build has prepared the tree
REL=$(cat "$K/include/config/kernel.release")
case $REL in *"$SUFFIX") ;; *) log "unexpected release $REL"; exit 1 ;; esac
log "built $REL in $(($(date +%s) - t0)) s"

C=$ROOT/$REL
rm -rf "$C" && mkdir -p "$C/kernel/boot"
make -C "$K" -s INSTALL_MOD_PATH="$C/kernel" modules_install >&2
cp "$K/arch/x86/boot/bzImage" "$C/kernel/boot/vmlinuz-$REL"
cp "$K/.config" "$C/kernel/boot/config-$REL"
# qemu boots the ELF through its PVH note (no self-decompression under TCG)
strip -o "$C/kernel/boot/vmlinux-$REL" "$K/vmlinux"
touch "$C/kernel/.unpacked"
echo "$stamp" >"$C/build.stamp"
echo "$REL"
