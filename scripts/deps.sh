#!/usr/bin/env bash
# Installs what vpf's demo and tests need on a fresh Debian machine, as root:
# Debian packages (Open vSwitch, iproute2, strace, ethtool, gcc) only when
# missing, then the npm packages from the lockfile, then the TypeScript build
# and dist/nlshim.so (the LD_PRELOAD shim `vpfctl guest` runs tc/ip/devlink with).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ovs-vswitchd >/dev/null || need+=(openvswitch-switch)
command -v ovs-ofctl   >/dev/null || need+=(openvswitch-common)
command -v ip          >/dev/null || need+=(iproute2)
command -v tc          >/dev/null || need+=(iproute2)
command -v strace      >/dev/null || need+=(strace)
command -v ethtool     >/dev/null || need+=(ethtool)
command -v ping        >/dev/null || need+=(iputils-ping)
command -v python3     >/dev/null || need+=(python3)
command -v gcc         >/dev/null || need+=(gcc)
[ -f /usr/include/linux/netlink.h ] && [ -f /usr/include/stdio.h ] || need+=(libc6-dev linux-libc-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "vpf: installing Debian packages: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian package may start a system OVS where systemd runs; vpf's demo and
# tests use their own private instances and never touch that one.

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npx tsc -p tsconfig.json
# Rebuilt only when the source is newer: tests and the demo LD_PRELOAD it.
if [ ! -f dist/nlshim.so ] || [ agent/guest/nlshim.c -nt dist/nlshim.so ]; then
  mkdir -p dist
  gcc -shared -fPIC -O2 -Wall -Wextra -o dist/nlshim.so agent/guest/nlshim.c -ldl
fi
# The offload tier's VM (test/offload/): Debian's stock kernel, busybox and the
# probe, fetched and built once into /var/cache/vpf-kernelvm.
bash scripts/kernelvm/deps.sh >/dev/null
