# Shell helpers for the demo: a private Open vSwitch (own run directory, own
# network namespace, userspace datapath) and pod namespaces wired by veth pairs.
# Sourced by scripts/demo.sh; every function is idempotent in its cleanup.

DEMO_NS=${DEMO_NS:-vpfdemo}
OVS_DIR=${OVS_DIR:-/tmp/vpf-demo-ovs}
# Pod NAME lives in network namespace $POD_PREFIX$NAME: namespace names are
# host-wide, so a test run sets a prefix of its own.
POD_PREFIX=${POD_PREFIX:-}

ovs_env() {
  export OVS_RUNDIR=$OVS_DIR OVS_DBDIR=$OVS_DIR OVS_LOGDIR=$OVS_DIR OVS_SYSCONFDIR=$OVS_DIR
  export OVS_PKGDATADIR=/usr/share/openvswitch
}

ovs_start() {
  ovs_env
  rm -rf "$OVS_DIR"; mkdir -p "$OVS_DIR"
  ip netns add "$DEMO_NS"
  ip -n "$DEMO_NS" link set lo up
  ovsdb-tool create "$OVS_DIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ip netns exec "$DEMO_NS" ovsdb-server "$OVS_DIR/conf.db" --remote="punix:$OVS_DIR/db.sock" \
    --pidfile="$OVS_DIR/ovsdb-server.pid" --unixctl="$OVS_DIR/ovsdb-server.ctl" \
    --log-file="$OVS_DIR/ovsdb-server.log" --detach
  ovs-vsctl --db="unix:$OVS_DIR/db.sock" --no-wait init
  ip netns exec "$DEMO_NS" ovs-vswitchd "unix:$OVS_DIR/db.sock" --pidfile="$OVS_DIR/ovs-vswitchd.pid" \
    --unixctl="$OVS_DIR/ovs-vswitchd.ctl" --log-file="$OVS_DIR/ovs-vswitchd.log" --detach
}

ovs_stop() {
  ovs_env
  for d in ovs-vswitchd ovsdb-server; do
    [ -f "$OVS_DIR/$d.pid" ] && kill "$(cat "$OVS_DIR/$d.pid")" 2>/dev/null
  done
  sleep 0.2
  for d in ovs-vswitchd ovsdb-server; do
    [ -f "$OVS_DIR/$d.pid" ] && kill -9 "$(cat "$OVS_DIR/$d.pid")" 2>/dev/null
  done
  ip netns del "$DEMO_NS" 2>/dev/null
  rm -rf "$OVS_DIR"
}

# in_pod NAME CMD...: runs CMD in pod NAME's namespace.
in_pod() { local p=$1; shift; ip netns exec "$POD_PREFIX$p" "$@"; }

# pod_add NAME IP: pod NAME, whose eth0 pairs with NAME-dp in the OVS namespace.
# Checksum offload is off on both ends: the userspace datapath forwards what the
# veth hands it, and an offloaded (unfilled) checksum would arrive as garbage.
pod_add() {
  local name=$1 ip=$2 ns=$POD_PREFIX$1
  ip netns add "$ns"
  ip link add "$name-dp" netns "$DEMO_NS" type veth peer name eth0 netns "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$DEMO_NS" link set "$name-dp" up
  ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null 2>&1 || true
  ip netns exec "$DEMO_NS" ethtool -K "$name-dp" tx off >/dev/null 2>&1 || true
}

pod_del() {
  ip netns del "$POD_PREFIX$1" 2>/dev/null
}

pod_mac() {
  ip -n "$POD_PREFIX$1" -j link show eth0 | sed -n 's/.*"address":"\([^"]*\)".*/\1/p'
}

# udp_listen POD PORT SECONDS FILE: count the UDP datagrams POD receives on PORT
# for SECONDS, into FILE. The listener's pid is added to LISTENERS.
LISTENERS=()
udp_listen() {
  local pod=$1 port=$2 secs=$3 out=$4
  in_pod "$pod" node -e '
    const s = require("dgram").createSocket("udp4"); let n = 0;
    s.on("message", () => n++);
    s.bind(Number(process.argv[1]), () => setTimeout(() => { console.log(n); s.close(); }, Number(process.argv[2]) * 1000));
  ' "$port" "$secs" >"$out" &
  LISTENERS+=($!)
}

# udp_send POD DSTIP PORT COUNT
udp_send() {
  in_pod "$1" node -e '
    const s = require("dgram").createSocket("udp4"); let i = 0; const n = Number(process.argv[3]);
    const next = () => { if (i++ >= n) return s.close(); s.send("vpf-demo " + i, Number(process.argv[2]), process.argv[1], () => setTimeout(next, 5)); };
    next();
  ' "$2" "$3" "$4"
}
