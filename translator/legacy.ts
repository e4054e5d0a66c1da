// Legacy eswitch mode: the VFs' administrator settings (rules/vf.ts) as the
// OpenFlow flows of the VM's bridge. Pure: no I/O. The reference is mlx5 legacy
// mode (docs/legacy.md): a non-learning FDB keyed by destination MAC
// (eswitch.c esw_fdb_set_vport_rule), a per-VF ingress ACL for what the VF
// sends (esw/acl/ingress_lgcy.c) and a per-VF egress ACL for what it receives
// (esw/acl/egress_lgcy.c). Explicit flows, never NORMAL: NORMAL learns, floods
// unknown unicast to every port and ignores the port-VLAN model.
//
// Layout (the same table numbers as switchdev: the two flow sets are never
// installed together, the daemon swaps them in one bundle by cookie kind):
//   table 0  ingress ACL per in_port: link down, spoofchk, VST push / tagged
//            drop, max_tx_rate meter; then goto table 1
//   table 1  FDB: broadcast/multicast flood, unicast by dl_dst, unknown unicast
//   table 2  egress ACL per destination (reg0 = its OpenFlow port): link down,
//            port-VLAN filter and strip, output
//   table 3  uplink promisc filter: which VFs take unknown unicast from the wire
// What the datapath cannot honour (min_tx_rate without a host backend, query_rss)
// is refused when the guest asks for it (rules/vfvalidate.ts), so every setting
// that reaches here is realised.
import { defaultVfSettings, VLAN_PROTO_8021AD, type VfSettings } from '../rules/vf.js';
import { actionsText, matchText, type Match, type OfAction, type OfFlow, type OfMeter } from '../ovs/openflow/flow.js';
import { output, resubmit, setField } from './actions.js';
import { cookieOf, FlowKind } from './cookie.js';
import { macNum, mf } from './match.js';
import type { PortMap } from './portmap.js';

export interface LegacyInput {
  /**
   * uplink.port is the wire, vfs[n].port VF n's datapath port, uplink.rep the
   * PF's own netdev (a trusted switch port). vfs[n].rep has no role in legacy
   * mode: nothing is sent there and what arrives from it is dropped.
   */
  ports: PortMap;
  /** Index = VF number; a VF of the port map without settings has the defaults. */
  vfs: VfSettings[];
  /** Carrier of the uplink, for link-state auto. */
  uplinkUp: boolean;
  /** The guest PF's MAC, if known: unicast to it goes to the PF port. */
  pfMac?: string;
}

export interface LegacyPerVf {
  vf: number;
  /** Flows whose packet counts are VF tx_dropped (ingress ACL drops, vport down). */
  txDropCookies: bigint[];
  /** Flows whose packet counts are VF rx_dropped (egress ACL drops, vport down). */
  rxDropCookies: bigint[];
  /** The meter policing max_tx_rate; its band drops are tx_dropped too. */
  meterId?: number;
}

export interface LegacyTranslation {
  /** Sorted by table, priority (high first), match, actions; every cookie of kind LEGACY. */
  flows: OfFlow[];
  /**
   * One per VF with max_tx_rate, id = legacyMeterId(VF). Meters, not OVSDB ingress
   * policing: that polices a userspace-datapath tap in the wrong direction (docs/legacy.md).
   */
  meters: OfMeter[];
  perVf: LegacyPerVf[];
}

export const LegacyTable = { INGRESS: 0, FDB: 1, EGRESS: 2, PROMISC: 3 } as const;

/** The register that carries the destination port from the FDB to the egress ACL. */
const DEST = 'reg0';
const BCAST_MCAST = mf('eth_dst', 0x010000000000, 0x010000000000);
const ZERO_MAC = '00:00:00:00:00:00';

/** Carrier of the VF as its driver sees it: IFLA_VF_LINK_STATE auto follows the uplink. */
export function vfLinkUp(s: VfSettings, uplinkUp: boolean): boolean {
  return s.linkState === 'enable' || (s.linkState === 'auto' && uplinkUp);
}

/** VST: the eswitch tags for the VF. mlx5 sets insert+strip when `vlan || qos` (vlan 0 qos Q = priority tag). */
export const isVst = (s: VfSettings): boolean => s.vlan !== 0 || s.qos !== 0;

/** Meter ids apart from the switchdev translator's (1, 2, ...): a mode switch adds the new meters before its bundle and must not retune meters the old flows still use. */
export const LEGACY_METER_BASE = 0x10000;
export const legacyMeterId = (vf: number): number => LEGACY_METER_BASE + vf;

/**
 * The meter policing what VF `vf` sends at `mbps` (max_tx_rate; it works in both
 * eswitch modes, as on mlx5). kbps; burst = 100 ms at the rate.
 */
export function vfRateMeter(vf: number, mbps: number): OfMeter {
  return { id: legacyMeterId(vf), spec: `kbps burst stats bands=type=drop rate=${mbps * 1000} burst_size=${mbps * 100}` };
}

const normMac = (m: string | undefined): string | undefined => {
  if (!m) return undefined;
  const x = m.toLowerCase();
  // Zero and multicast addresses own no unicast (mlx5 allows a zero VF MAC; multicast is EINVAL upstream of us).
  if (x === ZERO_MAC || parseInt(x.slice(0, 2), 16) & 1) return undefined;
  return x;
};

function flow(owner: number, table: number, priority: number, match: Match, actions: OfAction[]): OfFlow {
  return { table, priority, cookie: cookieOf(FlowKind.LEGACY, owner, table, priority, match, actions), match, actions };
}

const inPort = (port: number) => mf('in_port', port);
const dest = (port: number) => mf(DEST, port);
const gotoTable = (table: number): OfAction => ({ a: 'goto_table', table });

/** The actions that hand the packet to port `port`'s egress ACL (table 2). */
const toEgress = (port: number): OfAction[] => [setField(DEST, port), resubmit(LegacyTable.EGRESS)];

function pushTag(s: VfSettings): OfAction[] {
  const a: OfAction[] = [{ a: 'push_vlan', tpid: s.vlanProto }, setField('vlan_vid', 0x1000 | s.vlan)];
  // OVS push_vlan starts with PCP 0 (ofproto-dpif-xlate.c OFPACT_PUSH_VLAN).
  if (s.qos) a.push(setField('vlan_pcp', s.qos));
  return a;
}

export function translateLegacy(input: LegacyInput): LegacyTranslation {
  const { ports, uplinkUp } = input;
  const U = ports.uplink.port, PF = ports.uplink.rep;
  const flows: OfFlow[] = [];
  const meters: OfMeter[] = [];
  const perVf: LegacyPerVf[] = [];
  const { INGRESS, FDB, EGRESS, PROMISC } = LegacyTable;

  // Shared flows: they depend on the port map only, so no VF setting touches them.
  flows.push(flow(0, INGRESS, 100, [inPort(U)], [gotoTable(FDB)]));
  flows.push(flow(0, INGRESS, 100, [inPort(PF)], [gotoTable(FDB)]));
  flows.push(flow(0, INGRESS, 0, [], []));
  // Broadcast and multicast reach every port; the egress ACLs keep VLANs apart, and OpenFlow never
  // outputs to in_port, which excludes the ingress port. mlx5 delivers multicast only to vports
  // that registered it or are allmulti: we do not see guest multicast lists, so all VFs get it.
  const all = [U, PF, ...ports.vfs.map((p) => p.port)];
  flows.push(flow(0, FDB, 300, [BCAST_MCAST], all.flatMap(toEgress)));
  // Unknown unicast from the wire: only to trusted promiscuous VFs (mlx5 uplink promisc rule, table 3);
  // from anywhere else: to the wire only (the FDB has no learning and no flood of unknown unicast).
  flows.push(flow(0, FDB, 100, [inPort(U)], ports.vfs.flatMap((p) => [setField(DEST, p.port), resubmit(PROMISC)])));
  flows.push(flow(0, FDB, 0, [], toEgress(U)));
  flows.push(flow(0, EGRESS, 100, [dest(U)], [output(U)]));
  flows.push(flow(0, EGRESS, 100, [dest(PF)], [output(PF)]));

  // Unicast FDB: one flow per MAC (mlx5 merges vports registering the same MAC into one entry with
  // several destinations; two OpenFlow flows with one match would replace each other).
  const owners = new Map<string, { ports: number[]; vfs: number[] }>();
  const own = (mac: string | undefined, port: number, vf?: number) => {
    if (!mac) return;
    const o = owners.get(mac) ?? { ports: [], vfs: [] };
    o.ports.push(port);
    if (vf !== undefined) o.vfs.push(vf);
    owners.set(mac, o);
  };
  own(normMac(input.pfMac), PF);

  ports.vfs.forEach((p, vf) => {
    const s = input.vfs[vf] ?? defaultVfSettings();
    const id = vf + 1;
    const X = p.port;
    const tx: OfFlow[] = [];
    const rx: OfFlow[] = [];
    const entry: LegacyPerVf = { vf, txDropCookies: [], rxDropCookies: [] };
    const mac = normMac(s.mac);
    own(mac, X, vf);

    if (!vfLinkUp(s, uplinkUp)) {
      // Vport down discards both ways (mlx5 *_discard_vport_down, added to the VF drop stats).
      tx.push(flow(id, INGRESS, 300, [inPort(X)], []));
      rx.push(flow(id, EGRESS, 300, [dest(X)], []));
    } else {
      // Ingress ACL (ingress_lgcy.c): one allow rule (untagged if VST 802.1Q, smac if spoofchk), the rest dropped.
      const allow = [inPort(X)];
      const acts: OfAction[] = [];
      if (s.maxTxRate > 0) {
        const m = vfRateMeter(vf, s.maxTxRate);
        meters.push(m);
        acts.push({ a: 'meter', id: m.id });
        entry.meterId = m.id;
      }
      const vst = isVst(s);
      // 802.1Q VST: mlx5 inserts only when there is no C-tag and its ACL drops guest-tagged frames;
      // 802.1ad: the S-tag goes over whatever the guest sent (QinQ).
      const untaggedOnly = vst && s.vlanProto !== VLAN_PROTO_8021AD;
      if (untaggedOnly) allow.push(mf('vlan_tci', 0, 0x1000));
      if (s.spoofchk) allow.push(mf('eth_src', macNum(s.mac.toLowerCase())));
      if (vst) acts.push(...pushTag(s));
      acts.push(gotoTable(FDB));
      flows.push(flow(id, INGRESS, 200, allow, acts));
      if (untaggedOnly || s.spoofchk) tx.push(flow(id, INGRESS, 100, [inPort(X)], []));

      // Egress ACL (egress_lgcy.c): with VST only the VF's VLAN passes, outer tag stripped; clone()
      // keeps the pop from the packet that the flood hands on to the next port.
      if (vst) {
        flows.push(flow(id, EGRESS, 200, [dest(X), mf('dl_vlan', s.vlan)], [{ a: 'clone', actions: [{ a: 'pop_vlan' }, output(X)] }]));
        rx.push(flow(id, EGRESS, 100, [dest(X)], []));
      } else {
        flows.push(flow(id, EGRESS, 100, [dest(X)], [output(X)]));
      }
    }
    // Promisc and allmulti are honoured only for trusted VFs (mlx5 esw_update_vport_rx_mode).
    if (s.trust && s.promisc) flows.push(flow(id, PROMISC, 100, [dest(X)], [resubmit(EGRESS)]));

    flows.push(...tx, ...rx);
    entry.txDropCookies = tx.map((f) => f.cookie);
    entry.rxDropCookies = rx.map((f) => f.cookie);
    perVf.push(entry);
  });

  for (const [mac, o] of owners) {
    const id = o.vfs.length === 1 && o.ports.length === 1 ? o.vfs[0]! + 1 : 0;
    flows.push(flow(id, FDB, 200, [mf('eth_dst', macNum(mac))], [...o.ports].sort((a, b) => a - b).flatMap(toEgress)));
  }

  // A stable order for people reading a dump side by side (by the printed line: any total order would do).
  flows.sort((a, b) => a.table - b.table || b.priority - a.priority || cmp(matchText(a.match), matchText(b.match)) || cmp(actionsText(a.actions), actionsText(b.actions)));
  return { flows, meters, perVf };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
