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
. $R/ovs-up.sh
set -- add-br br -- set bridge br datapath_type=system fail_mode=secure \
	protocols=OpenFlow10,OpenFlow11,OpenFlow12,OpenFlow13,OpenFlow14,OpenFlow15
for pm in $PORTS; do
	set -- "$@" -- add-port br "${pm%%:*}" -- set interface "${pm%%:*}" ofport_request="${pm##*:}"
done
ovs-vsctl --timeout=60 "$@" >>$R/setup.out 2>&1
echo $? >$R/setup.rc
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
	# every send meets conntrack afresh (the classifier models a new connection)
	$PROBE --listen "$listen" --passes "$PASSES" --flush-ct --settle "$SETTLE_MS" --upcall-wait "$UPCALL_MS" \
		<$s/frames >$s/probe 2>$s/probe.err
	ovs-appctl dpctl/dump-flows -m >$s/dp 2>&1
	tail -c +$((before + 1)) /run/ovs/ovs-vswitchd.log >$s/log
	up set$i
	i=$((i + 1))
done
ovs-appctl upcall/show >$R/upcall-show 2>&1
cp /run/ovs/ovs-vswitchd.log $R/ovs-vswitchd.log
up end
