#!/usr/bin/env bash
# The vpf demo, as root on a fresh Debian machine: installs what is missing,
# starts a private Open vSwitch (own run directory and network namespace,
# userspace datapath) and vpfd, registers VM "demo" with 3 VFs whose datapath
# ends are veth pairs into namespaces pod0..pod2, installs tc flower rules
# with the guest's own tools (`vpfctl guest demo -- tc ...` runs the real tc
# against the VM's channel), sends real traffic and shows that it obeys the
# rules; then switches the eswitch to legacy mode with the real devlink and ip
# and shows VF MACs and link state at work. Leaves nothing running. Exit 1 if traffic
# disobeyed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh

source scripts/demo/lib.sh
STATE=${STATE:-/tmp/vpf-demo-state}
VPFCTL=(node dist/bin/vpfctl.js --state-dir "$STATE")
vpfd_pid=""

cleanup() {
  set +e
  [ -n "$vpfd_pid" ] && kill "$vpfd_pid" 2>/dev/null && wait "$vpfd_pid" 2>/dev/null
  for p in pod0 pod1 pod2; do pod_del "$p"; done
  ovs_stop
  rm -rf "$STATE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cleanup   # a previous run that was killed leaves nothing behind either

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "private Open vSwitch in netns $DEMO_NS (run dir $OVS_DIR, datapath netdev)"
ovs_start
ovs-vsctl --db="unix:$OVS_DIR/db.sock" show | head -3

say "pods: pod0 10.0.0.10, pod1 10.0.0.11, pod2 10.0.0.12"
pod_add pod0 10.0.0.10; pod_add pod1 10.0.0.11; pod_add pod2 10.0.0.12
# No guest answers ARP in this demo (the slow path goes to the representor
# backends, which nothing reads), so the pods know each other's MACs.
for a in 0 1 2; do for b in 0 1 2; do
  [ $a = $b ] || in_pod pod$a ip neigh replace 10.0.0.1$b lladdr "$(pod_mac pod$b)" dev eth0 nud permanent
done; done

say "vpfd (state in $STATE)"
mkdir -p "$STATE"
node dist/bin/vpfd.js --state-dir "$STATE" --ovsdb "unix:$OVS_DIR/db.sock" --ovs-rundir "$OVS_DIR" \
  --datapath netdev --reconcile-interval-ms 2000 >"$STATE/vpfd.log" 2>&1 &
vpfd_pid=$!
for _ in $(seq 100); do [ -S "$STATE/vpfd.sock" ] && break; sleep 0.1; done
[ -S "$STATE/vpfd.sock" ] || { cat "$STATE/vpfd.log"; exit 1; }

say "vpfctl vm add demo --vfs 3 (VF datapath ends are the pods' veth peers)"
"${VPFCTL[@]}" vm add demo --vfs 3 --attach vf0=pod0-dp,vf1=pod1-dp,vf2=pod2-dp
"${VPFCTL[@]}" vm list

say "the guest's own tc installs flower rules on its representors (vpfctl guest demo -- tc ...)"
GUEST=("${VPFCTL[@]}" guest demo --)
tcg() { echo "  tc $*"; "${GUEST[@]}" tc "$@"; }
tcg qdisc add dev vf0 clsact
tcg qdisc add dev vf1 clsact
tcg qdisc add dev vf2 clsact
tcg filter add dev vf0 ingress prio 1 protocol ip flower ip_proto udp dst_ip 10.0.0.12 dst_port 5000 action drop
tcg filter add dev vf0 ingress prio 2 protocol ip flower dst_ip 10.0.0.11 action mirred egress mirror dev vf2 action mirred egress redirect dev vf1
tcg filter add dev vf0 ingress prio 3 protocol ip flower dst_ip 10.0.0.12 action mirred egress redirect dev vf2
tcg filter add dev vf1 ingress prio 1 protocol ip flower dst_ip 10.0.0.10 action mirred egress redirect dev vf0
tcg filter add dev vf2 ingress prio 1 protocol ip flower dst_ip 10.0.0.10 action mirred egress redirect dev vf0
echo "  (a rule OVS cannot express, with skip_sw, is refused the way a NIC refuses it:)"
tcg filter add dev vf0 ingress prio 9 protocol ip flower skip_sw enc_key_id 5 action drop || true

fail=0
rx() { ip -n "$POD_PREFIX$1" -j -s link show eth0 | sed -n 's/.*"rx":{"bytes":[0-9]*,"packets":\([0-9]*\).*/\1/p'; }

say "traffic"
if in_pod pod0 ping -c 3 -i 0.2 -W 1 10.0.0.11 >/dev/null; then echo "  pod0 -> pod1 ping: replies (allowed)"; else echo "  pod0 -> pod1 ping: NO REPLY"; fail=1; fi
if in_pod pod0 ping -c 3 -i 0.2 -W 1 10.0.0.12 >/dev/null; then echo "  pod0 -> pod2 ping: replies (allowed)"; else echo "  pod0 -> pod2 ping: NO REPLY"; fail=1; fi

udp_listen pod2 5000 3 "$STATE/udp5000"; udp_listen pod2 5001 3 "$STATE/udp5001"; udp_listen pod1 6000 3 "$STATE/udp6000"
sleep 0.5
before=$(rx pod2)
udp_send pod0 10.0.0.12 5000 20; udp_send pod0 10.0.0.12 5001 20; udp_send pod0 10.0.0.11 6000 20
mirrored=$(( $(rx pod2) - before ))
wait "${LISTENERS[@]}"
n5000=$(cat "$STATE/udp5000"); n5001=$(cat "$STATE/udp5001"); n6000=$(cat "$STATE/udp6000")
echo "  pod0 -> pod2 udp/5000: sent 20, arrived $n5000 (rule: drop)"
echo "  pod0 -> pod2 udp/5001: sent 20, arrived $n5001 (rule: redirect to vf2)"
echo "  pod0 -> pod1 udp/6000: sent 20, arrived $n6000 (rule: redirect to vf1, mirrored to vf2)"
echo "  frames pod2 saw during the UDP test: $mirrored (its 20 on 5001 plus 20 mirrored copies of pod1's)"
[ "$n5000" = 0 ] || fail=1
[ "$n5001" = 20 ] || fail=1
[ "$n6000" = 20 ] || fail=1
[ "$mirrored" -ge 40 ] || fail=1

say "vpfctl guest demo -- tc -s filter show dev vf0 ingress (the guest's tc; stats from OVS)"
"${GUEST[@]}" tc -s filter show dev vf0 ingress

say "vpfctl explain demo (each rule, its OpenFlow flows and cookies)"
"${VPFCTL[@]}" explain demo

say "ovs-ofctl dump-flows vpf-demo"
ovs-ofctl -O OpenFlow15 dump-flows "$OVS_DIR/vpf-demo.mgmt" | sed 's/^/  /'

say "legacy mode: the guest's devlink and ip (vpfctl guest demo -- devlink|ip ...)"
echo "  devlink dev show: $("${GUEST[@]}" devlink dev show)"
echo "  devlink dev eswitch set pci/0000:00:00.0 mode legacy"; "${GUEST[@]}" devlink dev eswitch set pci/0000:00:00.0 mode legacy
"${GUEST[@]}" devlink dev eswitch show pci/0000:00:00.0 | sed 's/^/  /'
ipg() { echo "  ip $*"; "${GUEST[@]}" ip "$@"; }
for n in 0 1 2; do ipg link set pf vf $n mac "$(pod_mac pod$n)"; done
# This demo's uplink is an internal port with no carrier; link-state auto VFs follow it down (mlx5), so force them.
ipg link set pf vf 0 state enable
ipg link set pf vf 1 state enable
ipg link set pf vf 2 state disable
ipg link show pf | sed 's/^/  /'
if in_pod pod0 ping -c 3 -i 0.2 -W 1 10.0.0.11 >/dev/null; then echo "  pod0 -> pod1 ping: replies (delivered by VF MAC)"; else echo "  pod0 -> pod1 ping: NO REPLY"; fail=1; fi
if in_pod pod0 ping -c 2 -i 0.2 -W 1 10.0.0.12 >/dev/null; then echo "  pod0 -> pod2 ping: REPLIES despite link disabled"; fail=1; else echo "  pod0 -> pod2 ping: no reply (vf 2 link state disable)"; fi
echo "  legacy flows on vpf-demo: $(ovs-ofctl -O OpenFlow15 dump-flows "$OVS_DIR/vpf-demo.mgmt" | grep -c cookie=0x4) (docs/legacy.md)"

if [ $fail = 0 ]; then say "traffic obeyed the offloaded rules and the legacy VF settings"; else say "TRAFFIC DID NOT OBEY THE RULES"; tail -20 "$STATE/vpfd.log"; fi
exit $fail
