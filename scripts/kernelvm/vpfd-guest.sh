#!/bin/sh
# Runs inside the offload tier's VM (init.sh): vpfd itself on a kernel
# datapath with tc offload, its VM's guest side driven by the real tc through
# nlshim, as a guest would. $1 is the run directory, written by
# test/offload/vpfd.test.ts:
#   config      PORTS, REPO, PROBE, VM, VFS
#   before      real-tc argument lines, run against the VM's channel before the frames
#   frames      "PORT HEX" lines, sent twice by the probe
#   after       the same, after the frames
# and reads back cmd.out (each command, its exit code and output), probe,
# dp (`dpctl/dump-flows -m`), offload.json (GET /offload), vpfd.log.
R=$1
. $R/config
. $R/ovs-up.sh
vpfd_up $REPO/dist
up vm

# The guest's own tc: its netlink sockets are the VM's channel (agent/guest/nlshim.c).
guest_tc() {
	LD_PRELOAD=$REPO/dist/nlshim.so VPF_NL_ROUTE=$S/vms/$VM.sock VPF_NL_GENL=$S/vms/$VM.genl.sock tc "$@"
}
: >$R/cmd.out
run_file $R/before
up rules
$PROBE --listen "$listen" --passes 2 --settle 20 --upcall-wait 1500 <$R/frames >$R/probe 2>$R/probe.err
up frames
ovs-appctl dpctl/dump-flows -m >$R/dp 2>&1
# The OpenFlow counters vpfd sums get tc's counts from OVS's revalidators: let them finish a pass.
ovs-appctl revalidator/wait >/dev/null 2>&1
run_file $R/after
node -e "require('http').get({ socketPath: '$S/vpfd.sock', path: '/offload' }, (r) => r.pipe(process.stdout))" >$R/offload.json 2>>$R/setup.out
up end
kill $vpfd 2>/dev/null
wait $vpfd
