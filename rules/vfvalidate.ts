// Applies one guest VF request to a VF's settings the way a legacy eswitch
// driver would: net/core/rtnetlink.c do_setvfinfo's fixed order, stopping at
// the first error with what came before it applied, and mlx5's checks
// (drivers/net/ethernet/mellanox/mlx5/core/eswitch.c, esw/legacy.c, en_main.c).
// Real NICs answer these with a bare errno; every error here carries an extack text.
import { Errno, VpfError } from './errors.js';
import { linkStateName, VLAN_PROTO_8021AD, VLAN_PROTO_8021Q, type VfRequest, type VfSettings } from './vf.js';
import { macToBytes } from './addr.js';

export interface VfContext {
  numVfs: number;
  mode: 'legacy' | 'switchdev';
  /** vpf pushes 802.1ad tags in OVS; without it 0x88a8 is EPROTONOSUPPORT like mlx5. */
  emulate8021ad: boolean;
  /** Whether the backend can guarantee a minimum rate; without it min_tx_rate != 0 is EOPNOTSUPP, as on NICs lacking it (default: yes). */
  minTxRateSupported?: boolean;
  /** Whether query_rss can be set (a host VF backend's NIC took it); without it EOPNOTSUPP, as mlx5. */
  rssQuerySupported?: boolean;
}

export type VfApplyResult = { settings: VfSettings } | { error: VpfError; settings: VfSettings };

const err = (errno: number, msg: string, attr: string) => new VpfError(errno, msg, attr);

/** One step of do_setvfinfo: returns an error or mutates `s`. */
type Step = (s: VfSettings, r: VfRequest, ctx: VfContext) => VpfError | undefined;

const switchdevOnlyLegacy = (ctx: VfContext, what: string, attr: string) =>
  // mlx5_eswitch_set_vport_{spoofchk,trust,state}: legacy mode only.
  ctx.mode !== 'legacy' ? err(Errno.EOPNOTSUPP, `${what} is a legacy-mode setting; the eswitch is in switchdev mode`, attr) : undefined;

const steps: Step[] = [
  // 1. IFLA_VF_MAC: mlx5_esw_set_vport_mac_locked refuses multicast; zero is allowed (clears it). Works in both modes.
  (s, r) => {
    if (r.mac === undefined) return undefined;
    let b: Uint8Array;
    try {
      b = macToBytes(r.mac);
    } catch {
      return err(Errno.EINVAL, `'${r.mac}' is not a MAC address`, 'IFLA_VF_MAC');
    }
    if (b[0]! & 1) return err(Errno.EINVAL, `VF MAC ${r.mac} is a multicast address`, 'IFLA_VF_MAC');
    s.mac = r.mac.toLowerCase();
    return undefined;
  },
  // 2./3. IFLA_VF_VLAN / IFLA_VF_VLAN_LIST: mlx5e_set_vf_vlan checks the protocol first,
  // then mlx5_eswitch_set_vport_vlan the mode, then the ranges.
  (s, r, ctx) => {
    if (!r.vlan) return undefined;
    const { vlan, qos, proto } = r.vlan;
    if (proto !== VLAN_PROTO_8021Q && !(proto === VLAN_PROTO_8021AD && ctx.emulate8021ad)) {
      return err(Errno.EPROTONOSUPPORT, `VLAN protocol 0x${proto.toString(16)} is not supported${proto === VLAN_PROTO_8021AD ? ' (802.1ad emulation is off)' : '; only 802.1Q and 802.1ad'}`, 'IFLA_VF_VLAN_LIST');
    }
    if (ctx.mode !== 'legacy') {
      // mlx5 answers 0 for vlan 0 "for compatibility with libvirt" and changes nothing;
      // it ignores a qos on vlan 0 silently, vpf refuses it instead of pretending.
      if (vlan === 0 && qos === 0) return undefined;
      return err(Errno.EOPNOTSUPP, 'a port VLAN is a legacy-mode setting; the eswitch is in switchdev mode', 'IFLA_VF_VLAN');
    }
    if (vlan > 4095) return err(Errno.EINVAL, `VLAN ${vlan} is out of range (0-4095)`, 'IFLA_VF_VLAN');
    if (qos > 7) return err(Errno.EINVAL, `qos ${qos} is out of range (0-7)`, 'IFLA_VF_VLAN');
    s.vlan = vlan;
    s.qos = qos;
    s.vlanProto = proto;
    return undefined;
  },
  // 4. IFLA_VF_TX_RATE: the max rate, with the current min (ndo_get_vf_config), through rtnl_set_vf_rate.
  (s, r) => {
    if (r.txRate === undefined) return undefined;
    if (r.txRate && r.txRate < s.minTxRate) return err(Errno.EINVAL, `TX rate ${r.txRate} Mbps is below min_tx_rate ${s.minTxRate} Mbps`, 'IFLA_VF_TX_RATE');
    s.maxTxRate = r.txRate;
    return undefined;
  },
  // 5. IFLA_VF_RATE: rtnl_set_vf_rate refuses max && max < min. mlx5 rates work in both modes.
  (s, r, ctx) => {
    if (!r.rate) return undefined;
    const { min, max } = r.rate;
    if (max && max < min) return err(Errno.EINVAL, `max_tx_rate ${max} Mbps is below min_tx_rate ${min} Mbps`, 'IFLA_VF_RATE');
    if (min && ctx.minTxRateSupported === false) return err(Errno.EOPNOTSUPP, 'min_tx_rate cannot be guaranteed here (no egress queues on the bridge); only max_tx_rate is policed', 'IFLA_VF_RATE');
    s.minTxRate = min;
    s.maxTxRate = max;
    return undefined;
  },
  // 6. IFLA_VF_SPOOFCHK
  (s, r, ctx) => {
    if (r.spoofchk === undefined) return undefined;
    const e = switchdevOnlyLegacy(ctx, 'spoof checking', 'IFLA_VF_SPOOFCHK');
    if (e) return e;
    s.spoofchk = r.spoofchk;
    return undefined;
  },
  // 7. IFLA_VF_LINK_STATE: only auto/enable/disable exist (if_link.h IFLA_VF_LINK_STATE_*).
  (s, r, ctx) => {
    if (r.linkState === undefined) return undefined;
    const name = linkStateName(r.linkState);
    if (!name) return err(Errno.EINVAL, `link state ${r.linkState} is not auto (0), enable (1) or disable (2)`, 'IFLA_VF_LINK_STATE');
    const e = switchdevOnlyLegacy(ctx, 'the VF link state', 'IFLA_VF_LINK_STATE');
    if (e) return e;
    s.linkState = name;
    return undefined;
  },
  // 8. IFLA_VF_RSS_QUERY_EN: mlx5 has no ndo_set_vf_rss_query_en, so do_setvfinfo answers a bare EOPNOTSUPP; a host VF backend's NIC may take it.
  (s, r, ctx) => {
    if (r.rssQuery === undefined) return undefined;
    if (!ctx.rssQuerySupported) return err(Errno.EOPNOTSUPP, '', 'IFLA_VF_RSS_QUERY_EN');
    s.rssQuery = r.rssQuery;
    return undefined;
  },
  // 9. IFLA_VF_TRUST
  (s, r, ctx) => {
    if (r.trust === undefined) return undefined;
    const e = switchdevOnlyLegacy(ctx, 'trust', 'IFLA_VF_TRUST');
    if (e) return e;
    s.trust = r.trust;
    return undefined;
  },
];

/**
 * Applies `req` to `current` (not modified) in do_setvfinfo's order. On error the
 * returned settings hold what the steps before the failing one applied, as the
 * kernel leaves them.
 */
export function applyVfRequest(current: VfSettings, req: VfRequest, ctx: VfContext): VfApplyResult {
  const s: VfSettings = { ...current };
  // mlx5_eswitch_get_vport: a VF the eswitch does not have is EINVAL for every setter.
  if (!Number.isInteger(req.vf) || req.vf < 0 || req.vf >= ctx.numVfs) {
    return { error: err(Errno.EINVAL, `vf ${req.vf} does not exist (the PF has ${ctx.numVfs} VFs)`, 'IFLA_VF_INFO'), settings: s };
  }
  for (const step of steps) {
    const e = step(s, req, ctx);
    if (e) return { error: e, settings: s };
  }
  return { settings: s };
}
