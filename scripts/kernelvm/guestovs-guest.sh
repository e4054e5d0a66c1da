#!/bin/sh
# Runs inside the offload tier's VM (init.sh): a guest's own Open vSwitch
# (hw-offload=true, default tc-policy) in its own network namespace `g`, on
# devices named and numbered as the VM's representors on vpfd's channel (vf0
# ifindex 2, vf1 ifindex 3: rules/ports.ts). $1 is the run directory, written
# by test/offload/guestovs.test.ts:
#   config   PORTS, REPO, PROBE, VM, VFS, MODE (vpfd | kernel), DIST (vpfd's
#            build), NLSHIM (nlshim.so)
#   flows    ovs-ofctl add-flows lines for the guest's bridge br-g
#   meters   (optional) ovs-ofctl add-meter arguments, one a line
#   frames   "PORT HEX" lines, sent once each (waiting for the guest's flows),
#            then (the guest's flows offloaded) PASSES more times by the probe
# MODE=vpfd: the guest OVS's NETLINK_ROUTE is vpfd's channel (nlshim), its
# NETLINK_GENERIC its own kernel datapath; g's vfN is the peer of the host
# bridge's vfNrep, so a frame vpfd traps reaches the guest OVS as on a
# switchdev NIC. MODE=kernel: the same guest OVS against the real kernel's tc,
# vfN's peer pN in g (the reference).
# Reads back: probe1, probe, gdp-*/gdpoff-*/gdpshow-* (the guest's dpctl before
# and after the second sends: mid, after), govs.log, and in
# vpfd mode tc.out/tc.json/tc-vf1.json (the guest's tc through nlshim), gtc.json (its
# kernel's software copies), tc-purged.json and gtc-purged.json (after the guest's OVS
# purged its flows), offload.json, dp, hovs.log, vpfd.log. SWCOPY=0 in config: no copies.
R=$1
. $R/config
: ${PASSES:=2}
if [ "$MODE" = vpfd ]; then
	. $R/ovs-up.sh
	guest_reps
else
	export PATH=/usr/sbin:/usr/bin:/sbin:/bin
	up() { read -r u _ </proc/uptime; echo "$1 $u" >>$R/timing; }
	echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6
	echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6
	ip link set lo up
	echo ok >$R/ovs-version; uname -r >$R/kernel
	ip netns add g
	ip netns exec g sh -c 'echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6; ip link set lo up'
	listen=
	i=0
	while [ $i -lt "$VFS" ]; do
		ip netns exec g ip link add p$i mtu 9000 type veth peer name vf$i index $((i + 2)) >>$R/setup.out 2>&1
		ip netns exec g ip link set p$i arp off multicast off up
		ip netns exec g ip link set vf$i mtu 9000 arp off multicast off up
		listen="$listen${listen:+,}vf$i=p$i"
		i=$((i + 1))
	done
fi
# Under TCG the first sends take longer than UDP's 30 s unreplied timeout: the guest's conntrack must still
# hold a connection when a later miss brings its packet back (the host's conntrack is another table).
modprobe nf_conntrack 2>/dev/null
ip netns exec g sh -c 'echo 600 >/proc/sys/net/netfilter/nf_conntrack_udp_timeout' >>$R/setup.out 2>&1
ip netns exec g ip -d link >$R/glinks 2>&1

S=/run/vpf
VMSOCK=
if [ "$MODE" = vpfd ]; then
	vpfd_up $DIST
	VMSOCK=$S/vms/$VM.sock
	up vm
else
	echo 0 >$R/setup.rc
fi

# The guest's OVS: own run directory, database, datapath (g's ovs-system).
G=/run/govs
mkdir -p $G
gx() { ip netns exec g env OVS_RUNDIR=$G OVS_DBDIR=$G OVS_LOGDIR=$G "$@"; }
gx ovsdb-tool create $G/conf.db /usr/share/openvswitch/vswitch.ovsschema >>$R/setup.out 2>&1
gx ovsdb-server $G/conf.db --remote=punix:$G/db.sock --pidfile --detach --no-chdir \
	--log-file=$G/ovsdb-server.log -vconsole:off >>$R/setup.out 2>&1
gx ovs-vsctl --no-wait init -- set Open_vSwitch . other_config:hw-offload=true \
	other_config:max-idle=600000 other_config:max-revalidator=5000 >>$R/setup.out 2>&1
pre=
# Its tc on the representors (vfN, ifindex N + 2: $reps) goes to vpfd, on its own devices (ovs-system, br-g) to its kernel.
# Its kernel keeps a software copy of its filters (VPF_NL_SWCOPY), as a switchdev's tc core does: what vpfd
# hands to a representor meets them, and a miss after a goto reaches its datapath at that chain's recirc_id.
[ "$MODE" = vpfd ] && pre="env LD_PRELOAD=$NLSHIM VPF_NL_ROUTE=$VMSOCK VPF_NL_GENL=kernel VPF_NL_REPS=$reps VPF_NL_SWCOPY=${SWCOPY:-1}"
# (ovs-up.sh) OVS 3.1.0 runs no upcall handler when started before 10 s of uptime
gx $pre unshare --time --monotonic 30 ovs-vswitchd unix:$G/db.sock --pidfile --detach --no-chdir \
	--log-file=$G/ovs-vswitchd.log -vconsole:off \
	-vnetdev_offload_tc:file:dbg -vtc:file:dbg -vdpif_netlink:file:dbg -vnetdev_offload:file:dbg \
	-vnetlink_socket:file:dbg >>$R/setup.out 2>&1
echo "vswitchd rc $?" >>$R/setup.out
gx ovs-appctl vlog/disable-rate-limit >>$R/setup.out 2>&1
args="add-br br-g -- set bridge br-g datapath_type=system fail_mode=secure"
i=0
while [ $i -lt "$VFS" ]; do
	args="$args -- add-port br-g vf$i -- set interface vf$i ofport_request=$((i + 1))"
	i=$((i + 1))
done
gx ovs-vsctl --timeout=60 $args >>$R/setup.out 2>&1
echo "add-br rc $?" >>$R/setup.out
[ -f $R/meters ] && while read -r m; do
	[ -n "$m" ] && gx ovs-ofctl -O OpenFlow13 add-meter br-g "$m" >>$R/gflows.out 2>&1
done <$R/meters
gx ovs-ofctl -O OpenFlow13 add-flows br-g $R/flows >$R/gflows.out 2>&1
echo $? >$R/gflows.rc
up govs

gdp() {
	gx ovs-appctl dpctl/show >$R/gdpshow-$1 2>&1
	gx ovs-appctl dpctl/dump-flows -m >$R/gdp-$1 2>&1
	gx ovs-appctl dpctl/dump-flows type=offloaded >$R/gdpoff-$1 2>&1
}
if [ "$MODE" = vpfd ]; then
	probe() { $PROBE --listen "$listen" "$@"; }
else
	probe() { ip netns exec g $PROBE --listen "$listen" "$@"; }
fi
# First sends, a frame at a time: each misses, reaches the guest's OVS, which installs (and offloads) its
# flows. The next frame waits for them: the guest's handler is slow under TCG, and a reply must meet the
# connection its request made in the guest's conntrack.
gflows() { gx ovs-appctl dpctl/dump-flows 2>/dev/null | grep -c 'actions:'; }
: >$R/probe1
while read -r line; do
	before=$(gflows)
	echo "$line" | probe --passes 1 --settle 200 --upcall-wait 6000 >>$R/probe1 2>>$R/probe1.err
	read -r t0 _ </proc/uptime
	while [ "$(gflows)" -le "$before" ]; do
		read -r t _ </proc/uptime
		[ "${t%.*}" -ge $((${t0%.*} + 15)) ] && break
		sleep 0.2
	done
done <$R/frames
# The guest's handler is slow under TCG: wait for its flows to be offloaded
# (dp:tc in its dpctl), then for vpfd's bridge to carry them.
want=$(grep -c . $R/frames)
read -r t0 _ </proc/uptime
while :; do
	have=$(gx ovs-appctl dpctl/dump-flows type=offloaded 2>/dev/null | grep -c 'actions:')
	read -r t _ </proc/uptime
	[ "$have" -ge "$want" ] || [ "${t%.*}" -ge $((${t0%.*} + 30)) ] && break
	sleep 0.5
done
echo "offloaded $have of $want after $((${t%.*} - ${t0%.*})) s" >>$R/setup.out
[ "$MODE" = vpfd ] && ovs-appctl revalidator/wait >/dev/null 2>&1
sleep 1
gdp mid
up offloaded
# Then sends after offload: they must not reach the guest at all.
probe --passes $PASSES --settle 200 --upcall-wait 3000 <$R/frames >$R/probe 2>$R/probe.err
up frames
gx ovs-appctl revalidator/wait >/dev/null 2>&1
gdp after
gx ovs-appctl upcall/show >$R/gupcall 2>&1
if [ "$MODE" = vpfd ]; then
	ovs-appctl dpctl/dump-flows -m >$R/dp 2>&1
	ovs-appctl revalidator/wait >/dev/null 2>&1
	LD_PRELOAD=$NLSHIM VPF_NL_ROUTE=$VMSOCK tc -s -d filter show dev vf0 ingress >$R/tc.out 2>&1
	echo "### rc $?" >>$R/tc.out
	LD_PRELOAD=$NLSHIM VPF_NL_ROUTE=$VMSOCK tc -s -j filter show dev vf0 ingress >$R/tc.json 2>&1
	LD_PRELOAD=$NLSHIM VPF_NL_ROUTE=$VMSOCK tc -s -j filter show dev vf1 ingress >$R/tc-vf1.json 2>&1
	# The guest kernel's own copies (VPF_NL_SWCOPY), with their software counters.
	ip netns exec g tc -s -j filter show dev vf0 ingress >$R/gtc.json 2>&1
	# The guest's OVS deleting its datapath flows deletes its filters on vpfd, and their copies.
	gx ovs-appctl revalidator/purge >/dev/null 2>&1
	LD_PRELOAD=$NLSHIM VPF_NL_ROUTE=$VMSOCK tc -j filter show dev vf0 ingress >$R/tc-purged.json 2>&1
	ip netns exec g tc -j filter show dev vf0 ingress >$R/gtc-purged.json 2>&1
	node -e "require('http').get({ socketPath: '$S/vpfd.sock', path: '/offload' }, (r) => r.pipe(process.stdout))" >$R/offload.json 2>>$R/setup.out
	cp /run/ovs/ovs-vswitchd.log $R/hovs.log
else
	ip netns exec g tc -s -d filter show dev vf0 ingress >$R/tc.out 2>&1
fi
cp $G/ovs-vswitchd.log $R/govs.log
up end
gx ovs-appctl -t ovs-vswitchd exit >/dev/null 2>&1
[ -n "$vpfd" ] && { kill $vpfd 2>/dev/null; wait $vpfd; }
