#!/bin/sh
# Sourced by the offload tier's guest scripts (guest.sh, vpfd-guest.sh), inside
# the VM, chrooted into the host's root: a veth per port of $PORTS (the OVS end
# named as the port, its peer x<ofport>), then ovsdb-server and ovs-vswitchd
# with hw-offload=true and tc-policy=skip_hw, so that each datapath flow OVS
# can offload becomes a software-only tc flower filter (dp:tc), as in OVS's
# tests/system-offloads-traffic.at. Sets $listen for the probe and up().
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
# every offload refusal is wanted: those modules rate-limit their messages
ovs-appctl vlog/disable-rate-limit >>$R/setup.out 2>&1
ovs-vswitchd --version | head -n1 >$R/ovs-version
uname -r >$R/kernel
up ready

# vpfd_up DIST: vpfd from DIST (a build's dist/) on this OVS (kernel datapath,
# hw-offload, tc-policy skip_hw), and VM $VM with $VFS VFs attached to the
# tier's ports (vfN, vfNrep, uplink, uplinkrep); sets S (its state directory)
# and vpfd (its pid), and writes the VM add's exit code to setup.rc.
vpfd_up() {
	S=/run/vpf
	mkdir -p $S
	node $1/bin/vpfd.js --state-dir $S --ovsdb unix:/run/ovs/db.sock --ovs-rundir /run/ovs \
		--datapath system --hw-offload true --tc-policy skip_hw --reconcile-interval-ms 600000 \
		>$R/vpfd.log 2>&1 &
	vpfd=$!
	n=0
	while [ ! -S $S/vpfd.sock ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
	attach=uplink=uplink,uplinkrep=uplinkrep
	i=0
	while [ $i -lt "$VFS" ]; do attach=$attach,vf$i=vf$i,rep$i=vf${i}rep; i=$((i + 1)); done
	node $1/bin/vpfctl.js --state-dir $S vm add $VM --vfs $VFS --attach $attach >>$R/setup.out 2>&1
	echo $? >$R/setup.rc
}

# guest_reps: the guest's side of the VM's representors, in network namespace
# g: vfN (ifindex N + 2, its number on vpfd's channel: rules/ports.ts) is the
# peer of the bridge's vfNrep, so a frame vpfd hands to a representor reaches
# the guest's kernel as from a switchdev NIC, and what the guest sends on vfN
# reaches the bridge on vfNrep. Sets reps (the ifindexes, for VPF_NL_REPS).
guest_reps() {
	ip netns add g
	ip netns exec g sh -c 'echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6; ip link set lo up'
	reps=
	i=0
	while [ $i -lt "$VFS" ]; do
		ip link del vf${i}rep 2>/dev/null
		ip link add vf${i}rep mtu 9000 type veth peer name vf$i netns g index $((i + 2)) >>$R/setup.out 2>&1
		ip link set vf${i}rep arp off multicast off up
		ip netns exec g ip link set vf$i mtu 9000 arp off multicast off up
		reps="$reps${reps:+,}$((i + 2))"
		i=$((i + 1))
	done
	listen=
	for pm in $PORTS; do
		case ${pm%%:*} in vf*rep) ;; *) listen="$listen${listen:+,}${pm%%:*}=x${pm##*:}" ;; esac
	done
}

# run_file FILE: each line of FILE as the arguments of the calling script's
# guest_tc (the real tc, its netlink through nlshim), appended to cmd.out with
# its exit code.
run_file() {
	while read -r line; do
		[ -n "$line" ] || continue
		echo "### tc $line" >>$R/cmd.out
		eval "guest_tc $line" >>$R/cmd.out 2>&1
		echo "### rc $?" >>$R/cmd.out
	done <$1
}
