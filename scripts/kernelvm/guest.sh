#!/bin/sh
# Runs inside the offload tier's VM, chrooted into the host's root (init.sh):
# the host's own Open vSwitch and iproute2 against the guest's stock kernel.
# $1 is the run directory (read-write 9p share), written by
# test/offload/harness.ts:
#   config          PORTS="name:ofport ...", NSETS, PASSES, PROBE, SETTLE_MS, UPCALL_MS
#   setN/flows      "delete" + ovs-ofctl add-flows lines (one bundle)
#   setN/meters     ovs-ofctl add-meter arguments, one a line
#   setN/frames     "PORT HEX" lines
# and reads back setN/probe (probe.c's output), setN/dp (`dpctl/dump-flows -m`),
# setN/log (ovs-vswitchd's log lines of that set), setN/*.rc and *.out.
#
# One kernel-datapath bridge `br` (fail_mode=secure) holds a veth per port
# (OVS end = the port name, peer x<ofport>); hw-offload=true with
# tc-policy=skip_hw turns each datapath flow OVS can offload into a
# software-only tc flower filter, as OVS's tests/system-offloads-traffic.at does.
R=$1
. $R/config
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export OVS_RUNDIR=/run/ovs OVS_DBDIR=/run/ovs OVS_LOGDIR=/run/ovs OVS_SYSCONFDIR=/etc
mkdir -p /run/ovs
up() { read -r u _ </proc/uptime; echo "$1 $u" >>$R/timing; }
up start

# no IPv6 (no DAD/MLD frames on the ports), one `ip -batch` for all links
echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6
echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6
ip link set lo up
: >/run/links
listen=
for pm in $PORTS; do
	n=${pm%%:*} x=x${pm##*:}
	echo "link add name $n type veth peer name $x" >>/run/links
	echo "link set $n mtu 9000 arp off multicast off up" >>/run/links
	echo "link set $x mtu 9000 arp off multicast off up" >>/run/links
	listen="$listen${listen:+,}$n=$x"
done
ip -batch /run/links >$R/setup.out 2>&1

ovsdb-tool create /run/ovs/conf.db /usr/share/openvswitch/vswitch.ovsschema >>$R/setup.out 2>&1
ovsdb-server /run/ovs/conf.db --remote=punix:/run/ovs/db.sock --pidfile --detach --no-chdir \
	--log-file=/run/ovs/ovsdb-server.log -vconsole:off >>$R/setup.out 2>&1
# max-idle: datapath flows must outlive a slow set under TCG
ovs-vsctl --no-wait init -- set Open_vSwitch . other_config:hw-offload=true \
	other_config:tc-policy=skip_hw other_config:max-idle=600000 \
	other_config:max-revalidator=5000 >>$R/setup.out 2>&1
# OVS 3.1.0 counts 0 CPUs while CLOCK_MONOTONIC < 10 s (fixed upstream in
# "ovs-thread: Fix cpus not read for the first 10s."), then runs 0 upcall
# handlers for good: start it in a time namespace 30 s ahead.
unshare --time --monotonic 30 ovs-vswitchd unix:/run/ovs/db.sock --pidfile --detach --no-chdir \
	--log-file=/run/ovs/ovs-vswitchd.log -vconsole:off \
	-vnetdev_offload_tc:file:dbg -vtc:file:dbg -vdpif_netlink:file:dbg -vnetdev_offload:file:dbg \
	>>$R/setup.out 2>&1
set -- add-br br -- set bridge br datapath_type=system fail_mode=secure \
	protocols=OpenFlow10,OpenFlow11,OpenFlow12,OpenFlow13,OpenFlow14,OpenFlow15
for pm in $PORTS; do
	set -- "$@" -- add-port br "${pm%%:*}" -- set interface "${pm%%:*}" ofport_request="${pm##*:}"
done
ovs-vsctl --timeout=60 "$@" >>$R/setup.out 2>&1
echo $? >$R/setup.rc
# every offload refusal is wanted: those modules rate-limit their messages
ovs-appctl vlog/disable-rate-limit >>$R/setup.out 2>&1
ovs-vswitchd --version | head -n1 >$R/ovs-version
uname -r >$R/kernel
up ready

of() { ovs-ofctl -O OpenFlow15 "$@"; }
logsize() { wc -c </run/ovs/ovs-vswitchd.log; }
i=0
while [ $i -lt "$NSETS" ]; do
	s=$R/set$i
	# meters go first (deleting one deletes the flows using it), then one
	# bundle replaces the table, then no datapath flow of the last set survives
	of del-meters br >/dev/null 2>&1
	k=0
	while read -r m; do
		[ -n "$m" ] || continue
		of add-meter br "$m" >$s/meter$k.out 2>&1
		echo $? >$s/meter$k.rc
		k=$((k + 1))
	done <$s/meters
	of --bundle add-flows br $s/flows >$s/flows.out 2>&1
	echo $? >$s/flows.rc
	ovs-appctl revalidator/purge >/dev/null 2>&1
	ovs-appctl dpctl/flush-conntrack >/dev/null 2>&1
	before=$(logsize)
	$PROBE --listen "$listen" --passes "$PASSES" --settle "$SETTLE_MS" --upcall-wait "$UPCALL_MS" \
		<$s/frames >$s/probe 2>$s/probe.err
	ovs-appctl dpctl/dump-flows -m >$s/dp 2>&1
	tail -c +$((before + 1)) /run/ovs/ovs-vswitchd.log >$s/log
	up set$i
	i=$((i + 1))
done
ovs-appctl upcall/show >$R/upcall-show 2>&1
cp /run/ovs/ovs-vswitchd.log $R/ovs-vswitchd.log
up end
