#!/bin/sh
# Runs inside the offload tier's VM (init.sh): vpfd, and a guest's hand-written
# tc on its representors (guest_reps: netns g, vfN the peer of the bridge's
# vfNrep) through nlshim, with the guest's kernel keeping a software copy of
# its filters unless SWCOPY=0 (VPF_NL_SWCOPY). $1 is the run directory,
# written by test/offload/swcopy.test.ts:
#   config   PORTS, REPO, PROBE, VM, VFS, SWCOPY
#   before   tc argument lines, run in g through nlshim
#   frames   "PORT HEX" lines, sent twice by the probe
# Reads back cmd.out (each command, its exit code and output), probe,
# tc.json (the filters as vpfd answers for them), gtc.json (the guest
# kernel's own copies, with their software counters), dp, vpfd.log.
R=$1
. $R/config
. $R/ovs-up.sh
guest_reps
# A device of the guest's own, no representor: a redirect to it is the guest kernel's to take, not vpfd's.
ip netns exec g ip link add own9 index 9 type veth peer name own9p >>$R/setup.out 2>&1
vpfd_up $REPO/dist
up vm

guest_tc() {
	ip netns exec g env LD_PRELOAD=$REPO/dist/nlshim.so VPF_NL_ROUTE=$S/vms/$VM.sock VPF_NL_REPS=$reps \
		VPF_NL_SWCOPY=${SWCOPY:-1} tc "$@"
}
: >$R/cmd.out
run_file $R/before
up rules
$PROBE --listen "$listen" --passes 2 --settle 200 --upcall-wait 3000 <$R/frames >$R/probe 2>$R/probe.err
up frames
ovs-appctl dpctl/dump-flows -m >$R/dp 2>&1
ovs-appctl revalidator/wait >/dev/null 2>&1
guest_tc -s -j filter show dev vf0 ingress >$R/tc.json 2>&1
ip netns exec g tc -s -j filter show dev vf0 ingress >$R/gtc.json 2>&1
up end
kill $vpfd 2>/dev/null
wait $vpfd
