// TCA_FLOWER_ACT <-> Action[]: each action is a nest numbered from 1 (its order,
// act_api.c tcf_action_init) holding TCA_ACT_KIND and TCA_ACT_OPTIONS. Every
// kind's options start with a struct whose first 20 bytes are tc_gen
// (index, capab, action = control verdict, refcnt, bindcnt; pkt_cls.h).
import { bytesToHex, bytesToIp, hexToBytes, ipFamily, ipToBytes } from '../addr.js';
import { Errno, VpfError } from '../errors.js';
import type { Action, Control, CtAction, GeneveOpt, MplsAction, PeditHtype, PeditKey, PoliceAction, TunnelKeyAction, VlanAction } from '../model.js';
import { AttrWriter, attrMap, parseAttrs, read, type Attr } from './nlmsg.js';
import type { DevMap } from '../ports.js';
import { burstToTicks, ticksToBurst } from '../psched.js';
import { devIfindex, devName } from '../ports.js';

export const TCA_ACT = { KIND: 1, OPTIONS: 2, INDEX: 3, STATS: 4, PAD: 5, COOKIE: 6, FLAGS: 7, HW_STATS: 8, USED_HW_STATS: 9, IN_HW_COUNT: 10 } as const;
/** act_api.c: at most TCA_ACT_MAX_PRIO actions per filter. */
export const TCA_ACT_MAX_PRIO = 32;

// --- control verdicts (pkt_cls.h TC_ACT_*) ---
const TC_ACT = { UNSPEC: -1, OK: 0, RECLASSIFY: 1, SHOT: 2, PIPE: 3, STOLEN: 4, TRAP: 8 } as const;
const EXT_JUMP = 0x10000000;
const EXT_GOTO = 0x20000000;
const EXT_MASK = 0xf0000000;

export function controlToWire(c: Control): number {
  switch (c.kind) {
    case 'pass':
      return TC_ACT.OK;
    case 'drop':
      return TC_ACT.SHOT;
    case 'pipe':
      return TC_ACT.PIPE;
    case 'continue':
      return TC_ACT.UNSPEC;
    case 'reclassify':
      return TC_ACT.RECLASSIFY;
    case 'stolen':
      return TC_ACT.STOLEN;
    case 'trap':
      return TC_ACT.TRAP;
    case 'goto':
      return (EXT_GOTO | c.chain) >>> 0;
    case 'jump':
      return (EXT_JUMP | c.count) >>> 0;
  }
}

export function controlFromWire(v: number, where: string): Control {
  const u = v >>> 0;
  if ((u & EXT_MASK) === EXT_GOTO) return { kind: 'goto', chain: u & ~EXT_MASK };
  if ((u & EXT_MASK) === EXT_JUMP) return { kind: 'jump', count: u & ~EXT_MASK };
  switch (v | 0) {
    case TC_ACT.OK:
      return { kind: 'pass' };
    case TC_ACT.SHOT:
      return { kind: 'drop' };
    case TC_ACT.PIPE:
      return { kind: 'pipe' };
    case TC_ACT.UNSPEC:
      return { kind: 'continue' };
    case TC_ACT.RECLASSIFY:
      return { kind: 'reclassify' };
    case TC_ACT.STOLEN:
      return { kind: 'stolen' };
    case TC_ACT.TRAP:
      return { kind: 'trap' };
  }
  // act_api.c tcf_action_check_ctrlact: anything else is "invalid control action".
  throw new VpfError(Errno.EINVAL, `${where}: invalid control action ${v}`, where);
}

// --- tc_gen ---
const TC_GEN = 20;
function genRead(b: Buffer, where: string, size: number): { index: number; control: Control } {
  if (b.length < size) throw new VpfError(Errno.EINVAL, `${where}: parameters are ${b.length} bytes, expected ${size}`, where);
  return { index: b.readUInt32LE(0), control: controlFromWire(b.readInt32LE(8), where) };
}
function genWrite(size: number, a: Action): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32LE(a.index ?? 0, 0);
  b.writeInt32LE(controlToWire(a.control) | 0, 8);
  return b;
}
const withIndex = <T extends Action>(a: T, index: number): T => (index ? { ...a, index } : a);

// --- per-kind attribute ids (include/uapi/linux/tc_act/*.h) ---
const MIRRED_PARMS = 2;
const GACT_PARMS = 2, GACT_PROB = 3;
const VLAN = { PARMS: 2, ID: 3, PROTO: 4, PRIO: 6 } as const;
const PEDIT = { PARMS: 2, PARMS_EX: 4, KEYS_EX: 5, KEY_EX: 6, HTYPE: 1, CMD: 2 } as const;
const CSUM_PARMS = 1;
const TK = { PARMS: 2, V4_SRC: 3, V4_DST: 4, V6_SRC: 5, V6_DST: 6, KEY_ID: 7, DST_PORT: 9, NO_CSUM: 10, OPTS: 11, TOS: 12, TTL: 13, NO_FRAG: 14 } as const;
const CT = { PARMS: 1, ACTION: 3, ZONE: 4, MARK: 5, MARK_MASK: 6, LABELS: 7, LABELS_MASK: 8, V4_MIN: 9, V4_MAX: 10, V6_MIN: 11, V6_MAX: 12, PORT_MIN: 13, PORT_MAX: 14, HELPER_NAME: 16, HELPER_FAMILY: 17, HELPER_PROTO: 18 } as const;
const CT_FLAG = { COMMIT: 1, FORCE: 2, CLEAR: 4, NAT: 8, NAT_SRC: 16, NAT_DST: 32 } as const;
const POLICE = { TBF: 1, RATE: 2, PEAKRATE: 3, AVRATE: 4, RESULT: 5, RATE64: 8, PEAKRATE64: 9, PKTRATE64: 10, PKTBURST64: 11 } as const;
const SKBEDIT = { PARMS: 2, PRIORITY: 3, QUEUE_MAPPING: 4, MARK: 5, PTYPE: 7, MASK: 8, FLAGS: 9 } as const;
const SAMPLE = { PARMS: 2, RATE: 3, TRUNC: 4, GROUP: 5 } as const;
const MPLS = { PARMS: 2, PROTO: 4, LABEL: 5, TC: 6, TTL: 7, BOS: 8 } as const;
const MPLS_OP = { pop: 1, push: 2, modify: 3, dec_ttl: 4, mac_push: 5 } as const;
const MIRRED_EACTION = { 'egress-redirect': 1, 'egress-mirror': 2, 'ingress-redirect': 3, 'ingress-mirror': 4 } as const;
const PEDIT_HTYPES: PeditHtype[] = ['network', 'eth', 'ip4', 'ip6', 'tcp', 'udp'];

export { burstToTicks, ticksToBurst } from '../psched.js';

function opt(m: Map<number, Attr>, t: number): Attr | undefined {
  return m.get(t);
}

function decodeGeneveOpts(a: Attr, where: string): GeneveOpt[] {
  const out: GeneveOpt[] = [];
  for (const o of parseAttrs(a.value, where)) {
    if (o.type !== 1) throw new VpfError(Errno.EOPNOTSUPP, `${where}: only geneve options are supported`, where);
    const g = attrMap(parseAttrs(o.value, where));
    const c = g.get(1), t = g.get(2), d = g.get(3);
    if (!c || !t || !d) throw new VpfError(Errno.EINVAL, `${where}: geneve option needs class, type and data`, where);
    out.push({ class: read.be16(c, 'GENEVE_CLASS'), type: read.u8(t, 'GENEVE_TYPE'), data: bytesToHex(d.value) });
  }
  return out;
}

type Decoder = (opts: Map<number, Attr>, devs: DevMap | undefined) => Action;

const DECODERS: Record<string, Decoder> = {
  gact(o) {
    const p = opt(o, GACT_PARMS);
    if (!p) throw new VpfError(Errno.EINVAL, 'gact: missing TCA_GACT_PARMS', 'TCA_GACT_PARMS');
    if (opt(o, GACT_PROB)) throw new VpfError(Errno.EOPNOTSUPP, 'gact random/determ (TCA_GACT_PROB) cannot be offloaded', 'TCA_GACT_PROB');
    const g = genRead(p.value, 'TCA_GACT_PARMS', TC_GEN);
    return withIndex({ kind: 'gact', control: g.control }, g.index);
  },
  mirred(o, devs) {
    const p = opt(o, MIRRED_PARMS);
    if (!p) throw new VpfError(Errno.EINVAL, 'mirred: missing TCA_MIRRED_PARMS', 'TCA_MIRRED_PARMS');
    if (o.get(4)) throw new VpfError(Errno.EOPNOTSUPP, 'mirred to a block (TCA_MIRRED_BLOCKID) is not supported', 'TCA_MIRRED_BLOCKID');
    const g = genRead(p.value, 'TCA_MIRRED_PARMS', 28);
    const eaction = p.value.readInt32LE(20);
    const ifindex = p.value.readUInt32LE(24);
    const ea = Object.entries(MIRRED_EACTION).find(([, v]) => v === eaction)?.[0];
    if (!ea) throw new VpfError(Errno.EINVAL, `mirred: unknown eaction ${eaction}`, 'TCA_MIRRED_PARMS');
    const dev = devName(ifindex, devs);
    if (!dev) throw new VpfError(Errno.ENODEV, `mirred: no representor with ifindex ${ifindex}`, 'TCA_MIRRED_PARMS');
    const [direction, op] = ea.split('-') as ['egress' | 'ingress', 'redirect' | 'mirror'];
    return withIndex({ kind: 'mirred', direction, op, dev, control: g.control }, g.index);
  },
  vlan(o) {
    const p = opt(o, VLAN.PARMS);
    if (!p) throw new VpfError(Errno.EINVAL, 'vlan: missing TCA_VLAN_PARMS', 'TCA_VLAN_PARMS');
    const g = genRead(p.value, 'TCA_VLAN_PARMS', 24);
    const v = p.value.readInt32LE(20);
    const idA = opt(o, VLAN.ID), protoA = opt(o, VLAN.PROTO), prioA = opt(o, VLAN.PRIO);
    let a: VlanAction;
    if (v === 1) a = { kind: 'vlan', op: 'pop', control: g.control };
    else if (v === 2 || v === 3) {
      // act_vlan.c tcf_vlan_init: push and modify need a VLAN id.
      if (!idA) throw new VpfError(Errno.EINVAL, 'vlan push/modify: missing TCA_VLAN_PUSH_VLAN_ID', 'TCA_VLAN_PUSH_VLAN_ID');
      const id = read.u16(idA, 'TCA_VLAN_PUSH_VLAN_ID');
      if (id >= 4096) throw new VpfError(Errno.ERANGE, `vlan id ${id} out of range`, 'TCA_VLAN_PUSH_VLAN_ID');
      a = {
        kind: 'vlan',
        op: v === 2 ? 'push' : 'modify',
        id,
        ...(prioA ? { prio: read.u8(prioA, 'TCA_VLAN_PUSH_VLAN_PRIORITY') } : {}),
        ...(protoA ? { protocol: read.be16(protoA, 'TCA_VLAN_PUSH_VLAN_PROTOCOL') } : {}),
        control: g.control,
      };
    } else throw new VpfError(Errno.EOPNOTSUPP, `vlan action ${v} (pop_eth/push_eth) is not supported`, 'TCA_VLAN_PARMS');
    return withIndex(a, g.index);
  },
  pedit(o) {
    const p = opt(o, PEDIT.PARMS_EX) ?? opt(o, PEDIT.PARMS);
    if (!p) throw new VpfError(Errno.EINVAL, 'pedit: missing TCA_PEDIT_PARMS_EX', 'TCA_PEDIT_PARMS_EX');
    const g = genRead(p.value, 'TCA_PEDIT_PARMS', 24);
    const nkeys = p.value.readUInt8(20);
    if (nkeys === 0) throw new VpfError(Errno.EINVAL, 'pedit: no keys', 'TCA_PEDIT_PARMS_EX');
    if (p.value.length < 24 + nkeys * 24) throw new VpfError(Errno.EINVAL, `pedit: ${nkeys} keys do not fit in ${p.value.length} bytes`, 'TCA_PEDIT_PARMS_EX');
    const ex = opt(o, PEDIT.KEYS_EX);
    const exKeys = ex ? parseAttrs(ex.value, 'TCA_PEDIT_KEYS_EX') : [];
    if (ex && exKeys.length !== nkeys) throw new VpfError(Errno.EINVAL, 'pedit: TCA_PEDIT_KEYS_EX count differs from nkeys', 'TCA_PEDIT_KEYS_EX');
    const keys: PeditKey[] = [];
    for (let i = 0; i < nkeys; i++) {
      const off = 24 + i * 24;
      const mask = p.value.readUInt32BE(off);
      const value = p.value.readUInt32BE(off + 4);
      const offset = p.value.readInt32LE(off + 8);
      const at = p.value.readUInt32LE(off + 12), offmask = p.value.readUInt32LE(off + 16), shift = p.value.readUInt32LE(off + 20);
      if (at || offmask || shift) throw new VpfError(Errno.EOPNOTSUPP, 'pedit: variable offsets (at/offmask/shift) are not supported', 'TCA_PEDIT_PARMS_EX');
      let htype: PeditHtype = 'network';
      let cmd: 'set' | 'add' = 'set';
      if (ex) {
        const k = attrMap(parseAttrs(exKeys[i]!.value, 'TCA_PEDIT_KEY_EX'));
        const h = k.get(PEDIT.HTYPE), c = k.get(PEDIT.CMD);
        if (!h || !c) throw new VpfError(Errno.EINVAL, 'pedit: TCA_PEDIT_KEY_EX needs htype and cmd', 'TCA_PEDIT_KEY_EX');
        const hv = read.u16(h, 'TCA_PEDIT_KEY_EX_HTYPE');
        const cv = read.u16(c, 'TCA_PEDIT_KEY_EX_CMD');
        if (hv >= PEDIT_HTYPES.length) throw new VpfError(Errno.EINVAL, `pedit: header type ${hv}`, 'TCA_PEDIT_KEY_EX_HTYPE');
        if (cv > 1) throw new VpfError(Errno.EINVAL, `pedit: command ${cv}`, 'TCA_PEDIT_KEY_EX_CMD');
        htype = PEDIT_HTYPES[hv]!;
        cmd = cv === 1 ? 'add' : 'set';
      }
      if (offset % 4 !== 0) throw new VpfError(Errno.EINVAL, `pedit: offset ${offset} is not a multiple of 4`, 'TCA_PEDIT_PARMS_EX');
      keys.push({ htype, cmd, offset, mask, value });
    }
    return withIndex({ kind: 'pedit', keys, control: g.control }, g.index);
  },
  csum(o) {
    const p = opt(o, CSUM_PARMS);
    if (!p) throw new VpfError(Errno.EINVAL, 'csum: missing TCA_CSUM_PARMS', 'TCA_CSUM_PARMS');
    const g = genRead(p.value, 'TCA_CSUM_PARMS', 24);
    return withIndex({ kind: 'csum', flags: p.value.readUInt32LE(20), control: g.control }, g.index);
  },
  tunnel_key(o) {
    const p = opt(o, TK.PARMS);
    if (!p) throw new VpfError(Errno.EINVAL, 'tunnel_key: missing TCA_TUNNEL_KEY_PARMS', 'TCA_TUNNEL_KEY_PARMS');
    const g = genRead(p.value, 'TCA_TUNNEL_KEY_PARMS', 24);
    const t = p.value.readInt32LE(20);
    let a: TunnelKeyAction;
    if (t === 2) a = { kind: 'tunnel_key', op: 'unset', control: g.control };
    else if (t === 1) {
      const ip = (v4: number, v6: number, name: string) => {
        const x = opt(o, v4), y = opt(o, v6);
        if (x) return bytesToIp(read.bytes(x, `TCA_TUNNEL_KEY_ENC_IPV4_${name}`, 4));
        if (y) return bytesToIp(read.bytes(y, `TCA_TUNNEL_KEY_ENC_IPV6_${name}`, 16));
        return undefined;
      };
      const src = ip(TK.V4_SRC, TK.V6_SRC, 'SRC'), dst = ip(TK.V4_DST, TK.V6_DST, 'DST');
      const id = opt(o, TK.KEY_ID), port = opt(o, TK.DST_PORT), nocsum = opt(o, TK.NO_CSUM);
      const tos = opt(o, TK.TOS), ttl = opt(o, TK.TTL), opts = opt(o, TK.OPTS);
      a = {
        kind: 'tunnel_key',
        op: 'set',
        ...(id ? { id: read.be32(id, 'TCA_TUNNEL_KEY_ENC_KEY_ID') } : {}),
        ...(src ? { srcIp: src } : {}),
        ...(dst ? { dstIp: dst } : {}),
        ...(port ? { dstPort: read.be16(port, 'TCA_TUNNEL_KEY_ENC_DST_PORT') } : {}),
        ...(tos ? { tos: read.u8(tos, 'TCA_TUNNEL_KEY_ENC_TOS') } : {}),
        ...(ttl ? { ttl: read.u8(ttl, 'TCA_TUNNEL_KEY_ENC_TTL') } : {}),
        ...(nocsum ? { noCsum: read.u8(nocsum, 'TCA_TUNNEL_KEY_NO_CSUM') !== 0 } : {}),
        ...(opt(o, TK.NO_FRAG) ? { noFrag: true } : {}),
        ...(opts ? { geneveOpts: decodeGeneveOpts(opts, 'TCA_TUNNEL_KEY_ENC_OPTS') } : {}),
        control: g.control,
      };
    } else throw new VpfError(Errno.EINVAL, `tunnel_key: action ${t}`, 'TCA_TUNNEL_KEY_PARMS');
    return withIndex(a, g.index);
  },
  ct(o) {
    const p = opt(o, CT.PARMS);
    if (!p) throw new VpfError(Errno.EINVAL, 'ct: missing TCA_CT_PARMS', 'TCA_CT_PARMS');
    const g = genRead(p.value, 'TCA_CT_PARMS', TC_GEN);
    const flagsA = opt(o, CT.ACTION);
    const flags = flagsA ? read.u16(flagsA, 'TCA_CT_ACTION') : 0;
    const a: CtAction = { kind: 'ct', control: g.control };
    if (flags & CT_FLAG.CLEAR) {
      // act_ct.c tcf_ct_fill_params: clear ignores every other option.
      a.clear = true;
      return withIndex(a, g.index);
    }
    if (flags & CT_FLAG.COMMIT) a.commit = true;
    if (flags & CT_FLAG.FORCE) a.force = true;
    const zone = opt(o, CT.ZONE);
    if (zone) a.zone = read.u16(zone, 'TCA_CT_ZONE');
    const mark = opt(o, CT.MARK), markM = opt(o, CT.MARK_MASK);
    if (mark) a.mark = { value: read.u32(mark, 'TCA_CT_MARK'), mask: markM ? read.u32(markM, 'TCA_CT_MARK_MASK') : 0xffffffff };
    const lab = opt(o, CT.LABELS), labM = opt(o, CT.LABELS_MASK);
    if (lab) a.label = { value: bytesToHex(read.binaryUpTo(lab, 'TCA_CT_LABELS', 16)), mask: labM ? bytesToHex(read.binaryUpTo(labM, 'TCA_CT_LABELS_MASK', 16)) : 'ff'.repeat(16) };
    if (flags & CT_FLAG.NAT) {
      const type = flags & CT_FLAG.NAT_SRC ? 'src' : flags & CT_FLAG.NAT_DST ? 'dst' : 'restore';
      const ipA = (v4: number, v6: number) => {
        const x = opt(o, v4), y = opt(o, v6);
        return x ? bytesToIp(read.bytes(x, 'TCA_CT_NAT_IPV4', 4)) : y ? bytesToIp(read.bytes(y, 'TCA_CT_NAT_IPV6', 16)) : undefined;
      };
      const amin = ipA(CT.V4_MIN, CT.V6_MIN), amax = ipA(CT.V4_MAX, CT.V6_MAX);
      const pmin = opt(o, CT.PORT_MIN), pmax = opt(o, CT.PORT_MAX);
      a.nat = {
        type,
        ...(amin ? { addrMin: amin } : {}),
        ...(amax ? { addrMax: amax } : {}),
        ...(pmin ? { portMin: read.be16(pmin, 'TCA_CT_NAT_PORT_MIN') } : {}),
        ...(pmax ? { portMax: read.be16(pmax, 'TCA_CT_NAT_PORT_MAX') } : {}),
      };
    }
    const helper = opt(o, CT.HELPER_NAME);
    if (helper) {
      const fam = opt(o, CT.HELPER_FAMILY), proto = opt(o, CT.HELPER_PROTO);
      a.helper = { name: read.string(helper, 'TCA_CT_HELPER_NAME', 15), family: fam ? read.u8(fam, 'TCA_CT_HELPER_FAMILY') : 0, proto: proto ? read.u8(proto, 'TCA_CT_HELPER_PROTO') : 0 };
    }
    return withIndex(a, g.index);
  },
  police(o) {
    const tbf = opt(o, POLICE.TBF);
    if (!tbf) throw new VpfError(Errno.EINVAL, 'police: missing TCA_POLICE_TBF', 'TCA_POLICE_TBF');
    if (tbf.value.length < 56) throw new VpfError(Errno.EINVAL, `police: TCA_POLICE_TBF is ${tbf.value.length} bytes, expected 56`, 'TCA_POLICE_TBF');
    const b = tbf.value;
    const index = b.readUInt32LE(0);
    const exceed = controlFromWire(b.readInt32LE(4), 'TCA_POLICE_TBF');
    const burstTicks = b.readUInt32LE(12);
    const mtu = b.readUInt32LE(16);
    const rate32 = b.readUInt32LE(20 + 8);
    const peak32 = b.readUInt32LE(32 + 8);
    const r64 = opt(o, POLICE.RATE64), p64 = opt(o, POLICE.PEAKRATE64);
    const rate = r64 ? Number(read.u64(r64, 'TCA_POLICE_RATE64')) : rate32;
    const peakrate = p64 ? Number(read.u64(p64, 'TCA_POLICE_PEAKRATE64')) : peak32;
    const res = opt(o, POLICE.RESULT), avr = opt(o, POLICE.AVRATE);
    const pps = opt(o, POLICE.PKTRATE64), pburst = opt(o, POLICE.PKTBURST64);
    const a: PoliceAction = {
      kind: 'police',
      control: res ? controlFromWire(read.u32(res, 'TCA_POLICE_RESULT') | 0, 'TCA_POLICE_RESULT') : { kind: 'pass' },
      exceed,
      ...(rate ? { rate, burst: ticksToBurst(burstTicks, rate) } : {}),
      ...(mtu ? { mtu } : {}),
      ...(peakrate ? { peakrate } : {}),
      ...(avr ? { avrate: read.u32(avr, 'TCA_POLICE_AVRATE') } : {}),
      ...(pps ? { pktsPerSec: Number(read.u64(pps, 'TCA_POLICE_PKTRATE64')) } : {}),
    };
    if (pps && pburst) a.pktBurst = ticksToBurst(Number(read.u64(pburst, 'TCA_POLICE_PKTBURST64')), a.pktsPerSec!);
    return withIndex(a, index);
  },
  skbedit(o) {
    const p = opt(o, SKBEDIT.PARMS);
    if (!p) throw new VpfError(Errno.EINVAL, 'skbedit: missing TCA_SKBEDIT_PARMS', 'TCA_SKBEDIT_PARMS');
    const g = genRead(p.value, 'TCA_SKBEDIT_PARMS', TC_GEN);
    if (opt(o, SKBEDIT.FLAGS)) throw new VpfError(Errno.EOPNOTSUPP, 'skbedit inheritdsfield/queue_mapping ranges (TCA_SKBEDIT_FLAGS) are not supported', 'TCA_SKBEDIT_FLAGS');
    const mark = opt(o, SKBEDIT.MARK), mask = opt(o, SKBEDIT.MASK), prio = opt(o, SKBEDIT.PRIORITY), ptype = opt(o, SKBEDIT.PTYPE), q = opt(o, SKBEDIT.QUEUE_MAPPING);
    if (mask && !mark) throw new VpfError(Errno.EINVAL, 'skbedit: mask without mark', 'TCA_SKBEDIT_MASK');
    return withIndex(
      {
        kind: 'skbedit',
        ...(mark ? { mark: { value: read.u32(mark, 'TCA_SKBEDIT_MARK'), mask: mask ? read.u32(mask, 'TCA_SKBEDIT_MASK') : 0xffffffff } } : {}),
        ...(prio ? { priority: read.u32(prio, 'TCA_SKBEDIT_PRIORITY') } : {}),
        ...(ptype ? { ptype: read.u16(ptype, 'TCA_SKBEDIT_PTYPE') } : {}),
        ...(q ? { queueMapping: read.u16(q, 'TCA_SKBEDIT_QUEUE_MAPPING') } : {}),
        control: g.control,
      },
      g.index,
    );
  },
  sample(o) {
    const p = opt(o, SAMPLE.PARMS);
    if (!p) throw new VpfError(Errno.EINVAL, 'sample: missing TCA_SAMPLE_PARMS', 'TCA_SAMPLE_PARMS');
    const g = genRead(p.value, 'TCA_SAMPLE_PARMS', TC_GEN);
    const rate = opt(o, SAMPLE.RATE), group = opt(o, SAMPLE.GROUP), trunc = opt(o, SAMPLE.TRUNC);
    // act_sample.c tcf_sample_init: rate and group are mandatory, rate != 0.
    if (!rate || !group) throw new VpfError(Errno.EINVAL, 'sample: rate and group are required', 'TCA_SAMPLE_RATE');
    const r = read.u32(rate, 'TCA_SAMPLE_RATE');
    if (r === 0) throw new VpfError(Errno.EINVAL, 'invalid sample rate', 'TCA_SAMPLE_RATE');
    return withIndex({ kind: 'sample', rate: r, group: read.u32(group, 'TCA_SAMPLE_PSAMPLE_GROUP'), ...(trunc ? { trunc: read.u32(trunc, 'TCA_SAMPLE_TRUNC_SIZE') } : {}), control: g.control }, g.index);
  },
  mpls(o) {
    const p = opt(o, MPLS.PARMS);
    if (!p) throw new VpfError(Errno.EINVAL, 'mpls: missing TCA_MPLS_PARMS', 'TCA_MPLS_PARMS');
    const g = genRead(p.value, 'TCA_MPLS_PARMS', 24);
    const op = p.value.readInt32LE(20);
    const proto = opt(o, MPLS.PROTO), label = opt(o, MPLS.LABEL), tc = opt(o, MPLS.TC), ttl = opt(o, MPLS.TTL), bos = opt(o, MPLS.BOS);
    const fields = {
      ...(label ? { label: read.u32(label, 'TCA_MPLS_LABEL') } : {}),
      ...(tc ? { tc: read.u8(tc, 'TCA_MPLS_TC') } : {}),
      ...(ttl ? { ttl: read.u8(ttl, 'TCA_MPLS_TTL') } : {}),
      ...(bos ? { bos: read.u8(bos, 'TCA_MPLS_BOS') } : {}),
    };
    let a: MplsAction;
    if (op === MPLS_OP.pop) {
      if (!proto) throw new VpfError(Errno.EINVAL, 'mpls pop: protocol is required', 'TCA_MPLS_PROTO');
      a = { kind: 'mpls', op: 'pop', protocol: read.be16(proto, 'TCA_MPLS_PROTO'), control: g.control };
    } else if (op === MPLS_OP.push || op === MPLS_OP.mac_push) {
      a = { kind: 'mpls', op: op === MPLS_OP.push ? 'push' : 'mac_push', protocol: proto ? read.be16(proto, 'TCA_MPLS_PROTO') : 0x8847, ...fields, control: g.control };
    } else if (op === MPLS_OP.modify) a = { kind: 'mpls', op: 'modify', ...fields, control: g.control };
    else if (op === MPLS_OP.dec_ttl) a = { kind: 'mpls', op: 'dec_ttl', control: g.control };
    else throw new VpfError(Errno.EINVAL, `mpls: action ${op}`, 'TCA_MPLS_PARMS');
    return withIndex(a, g.index);
  },
};

/** Decodes TCA_FLOWER_ACT. Unknown kinds are EOPNOTSUPP naming the kind (act_api.c would load a module). */
export function decodeActions(act: Attr, devs?: DevMap): Action[] {
  const entries = parseAttrs(act.value, 'TCA_FLOWER_ACT');
  if (entries.length > TCA_ACT_MAX_PRIO) throw new VpfError(Errno.E2BIG, `more than ${TCA_ACT_MAX_PRIO} actions`, 'TCA_FLOWER_ACT');
  // The nest types are the action order (1..32); act_api.c tcf_action_init walks them in order.
  const sorted = [...entries].sort((x, y) => x.type - y.type);
  const out: Action[] = [];
  for (const e of sorted) {
    if (e.type < 1 || e.type > TCA_ACT_MAX_PRIO) throw new VpfError(Errno.EINVAL, `action order ${e.type} out of 1..32`, 'TCA_FLOWER_ACT');
    const m = attrMap(parseAttrs(e.value, `action ${e.type}`));
    // tcf_action_policy, checked before anything else of the action: TCA_ACT_COOKIE is NLA_BINARY of at most 16 bytes.
    const cookie = m.get(TCA_ACT.COOKIE);
    if (cookie && cookie.value.length > TC_COOKIE_MAX_SIZE) throw new VpfError(Errno.ERANGE, 'Attribute failed policy validation', 'TCA_ACT_COOKIE');
    const kindA = m.get(TCA_ACT.KIND);
    if (!kindA) throw new VpfError(Errno.EINVAL, `action ${e.type}: missing TCA_ACT_KIND`, 'TCA_ACT_KIND');
    const kind = read.string(kindA, 'TCA_ACT_KIND', 15);
    const dec = DECODERS[kind];
    if (!dec) throw new VpfError(Errno.EOPNOTSUPP, `action '${kind}' is not supported by vpf`, 'TCA_ACT_KIND');
    const optsA = m.get(TCA_ACT.OPTIONS);
    if (!optsA) throw new VpfError(Errno.EINVAL, `action ${kind}: missing TCA_ACT_OPTIONS`, 'TCA_ACT_OPTIONS');
    const a = dec(attrMap(parseAttrs(optsA.value, `${kind} options`)), devs);
    out.push(cookie ? { ...a, cookie: cookie.value.toString('hex') } : a);
  }
  return out;
}

/** TC_COOKIE_MAX_SIZE (include/uapi/linux/pkt_cls.h). */
export const TC_COOKIE_MAX_SIZE = 16;

/** An action's cookie (TCA_ACT_COOKIE), if it has one: where each caller puts it is the kernel's order there. */
function putCookie(y: AttrWriter, a: Action): void {
  if (a.cookie !== undefined) y.raw(TCA_ACT.COOKIE, Buffer.from(a.cookie, 'hex'));
}

function ifindexOf(dev: string, devs: DevMap | undefined): number {
  const i = devIfindex(dev, devs);
  if (i === undefined) throw new VpfError(Errno.ENODEV, `no representor named ${dev}`, 'TCA_MIRRED_PARMS');
  return i;
}

function encodeOptions(w: AttrWriter, a: Action, devs: DevMap | undefined): void {
  switch (a.kind) {
    case 'gact':
      w.raw(GACT_PARMS, genWrite(TC_GEN, a));
      break;
    case 'mirred': {
      const b = genWrite(28, a);
      b.writeInt32LE(MIRRED_EACTION[`${a.direction}-${a.op}`], 20);
      b.writeUInt32LE(ifindexOf(a.dev, devs), 24);
      w.raw(MIRRED_PARMS, b);
      break;
    }
    case 'vlan': {
      const b = genWrite(24, a);
      b.writeInt32LE(a.op === 'pop' ? 1 : a.op === 'push' ? 2 : 3, 20);
      w.raw(VLAN.PARMS, b);
      if (a.op !== 'pop') {
        w.u16(VLAN.ID, a.id);
        if (a.protocol !== undefined) w.be16(VLAN.PROTO, a.protocol);
        if (a.prio !== undefined) w.u8(VLAN.PRIO, a.prio);
      }
      break;
    }
    case 'pedit': {
      w.raw(PEDIT.PARMS_EX, peditParms(genWrite(24, a), a.keys));
      w.nest(PEDIT.KEYS_EX, (x) => {
        for (const k of a.keys) x.nest(PEDIT.KEY_EX, (y) => y.u16(PEDIT.HTYPE, PEDIT_HTYPES.indexOf(k.htype)).u16(PEDIT.CMD, k.cmd === 'add' ? 1 : 0), true);
      }, true);
      break;
    }
    case 'csum': {
      const b = genWrite(24, a);
      b.writeUInt32LE(a.flags, 20);
      w.raw(CSUM_PARMS, b);
      break;
    }
    case 'tunnel_key': {
      const b = genWrite(24, a);
      b.writeInt32LE(a.op === 'set' ? 1 : 2, 20);
      w.raw(TK.PARMS, b);
      if (a.op === 'set') {
        const ip = (s: string | undefined, v4: number, v6: number) => {
          if (s) w.raw(ipFamily(s) === 6 ? v6 : v4, Buffer.from(ipToBytes(s)));
        };
        ip(a.srcIp, TK.V4_SRC, TK.V6_SRC);
        ip(a.dstIp, TK.V4_DST, TK.V6_DST);
        if (a.id !== undefined) w.be32(TK.KEY_ID, a.id);
        if (a.dstPort !== undefined) w.be16(TK.DST_PORT, a.dstPort);
        if (a.noCsum !== undefined) w.u8(TK.NO_CSUM, a.noCsum ? 1 : 0);
        if (a.geneveOpts) {
          w.nest(TK.OPTS, (x) => {
            for (const g of a.geneveOpts!) x.nest(1, (y) => y.be16(1, g.class).u8(2, g.type).raw(3, Buffer.from(hexToBytes(g.data))), true);
          }, true);
        }
        if (a.tos !== undefined) w.u8(TK.TOS, a.tos);
        if (a.ttl !== undefined) w.u8(TK.TTL, a.ttl);
        if (a.noFrag) w.flag(TK.NO_FRAG);
      }
      break;
    }
    case 'ct': {
      w.raw(CT.PARMS, genWrite(TC_GEN, a));
      let flags = 0;
      if (a.clear) flags |= CT_FLAG.CLEAR;
      if (a.commit) flags |= CT_FLAG.COMMIT;
      if (a.force) flags |= CT_FLAG.FORCE;
      if (a.nat) flags |= CT_FLAG.NAT | (a.nat.type === 'src' ? CT_FLAG.NAT_SRC : a.nat.type === 'dst' ? CT_FLAG.NAT_DST : 0);
      w.u16(CT.ACTION, flags);
      if (a.zone !== undefined) w.u16(CT.ZONE, a.zone);
      if (a.mark) w.u32(CT.MARK, a.mark.value).u32(CT.MARK_MASK, a.mark.mask);
      if (a.label) w.raw(CT.LABELS, Buffer.from(hexToBytes(a.label.value))).raw(CT.LABELS_MASK, Buffer.from(hexToBytes(a.label.mask)));
      if (a.nat) {
        const ipw = (s: string | undefined, v4: number, v6: number) => {
          if (s) w.raw(ipFamily(s) === 6 ? v6 : v4, Buffer.from(ipToBytes(s)));
        };
        ipw(a.nat.addrMin, CT.V4_MIN, CT.V6_MIN);
        ipw(a.nat.addrMax, CT.V4_MAX, CT.V6_MAX);
        if (a.nat.portMin !== undefined) w.be16(CT.PORT_MIN, a.nat.portMin);
        if (a.nat.portMax !== undefined) w.be16(CT.PORT_MAX, a.nat.portMax);
      }
      if (a.helper) w.string(CT.HELPER_NAME, a.helper.name).u8(CT.HELPER_FAMILY, a.helper.family).u8(CT.HELPER_PROTO, a.helper.proto);
      break;
    }
    case 'police': {
      const b = Buffer.alloc(56);
      b.writeUInt32LE(a.index ?? 0, 0);
      b.writeInt32LE(controlToWire(a.exceed) | 0, 4);
      if (a.rate && a.burst !== undefined) b.writeUInt32LE(burstToTicks(a.burst, a.rate), 12);
      b.writeUInt32LE(a.mtu ?? 0, 16);
      b.writeUInt32LE(Math.min(a.rate ?? 0, 0xffffffff), 28);
      b.writeUInt32LE(Math.min(a.peakrate ?? 0, 0xffffffff), 40);
      w.raw(POLICE.TBF, b);
      // The kernel needs a rate table with a rate (qdisc_get_rtab); vpf never reads it back.
      if (a.rate) w.raw(POLICE.RATE, Buffer.alloc(1024));
      if (a.peakrate) w.raw(POLICE.PEAKRATE, Buffer.alloc(1024));
      if (a.avrate !== undefined) w.u32(POLICE.AVRATE, a.avrate);
      if (a.control.kind !== 'pass') w.u32(POLICE.RESULT, controlToWire(a.control));
      if (a.rate && a.rate > 0xffffffff) w.u64(POLICE.RATE64, BigInt(a.rate));
      if (a.pktsPerSec) {
        w.u64(POLICE.PKTRATE64, BigInt(a.pktsPerSec));
        w.u64(POLICE.PKTBURST64, BigInt(burstToTicks(a.pktBurst ?? 0, a.pktsPerSec)));
      }
      break;
    }
    case 'skbedit':
      w.raw(SKBEDIT.PARMS, genWrite(TC_GEN, a));
      if (a.priority !== undefined) w.u32(SKBEDIT.PRIORITY, a.priority);
      if (a.queueMapping !== undefined) w.u16(SKBEDIT.QUEUE_MAPPING, a.queueMapping);
      if (a.mark) {
        w.u32(SKBEDIT.MARK, a.mark.value);
        if (a.mark.mask !== 0xffffffff) w.u32(SKBEDIT.MASK, a.mark.mask);
      }
      if (a.ptype !== undefined) w.u16(SKBEDIT.PTYPE, a.ptype);
      break;
    case 'sample':
      w.raw(SAMPLE.PARMS, genWrite(TC_GEN, a));
      w.u32(SAMPLE.RATE, a.rate);
      if (a.trunc !== undefined) w.u32(SAMPLE.TRUNC, a.trunc);
      w.u32(SAMPLE.GROUP, a.group);
      break;
    case 'mpls': {
      const b = genWrite(24, a);
      b.writeInt32LE(MPLS_OP[a.op], 20);
      w.raw(MPLS.PARMS, b);
      if (a.op === 'push' || a.op === 'mac_push' || a.op === 'pop') w.be16(MPLS.PROTO, a.protocol);
      if (a.op === 'push' || a.op === 'mac_push' || a.op === 'modify') {
        if (a.label !== undefined) w.u32(MPLS.LABEL, a.label);
        if (a.tc !== undefined) w.u8(MPLS.TC, a.tc);
        if (a.ttl !== undefined) w.u8(MPLS.TTL, a.ttl);
        if (a.bos !== undefined) w.u8(MPLS.BOS, a.bos);
      }
      break;
    }
  }
}

/** struct tc_pedit_sel (its tc_gen head given) with nkeys and the tc_pedit_key array after it. */
function peditParms(head: Buffer, keys: readonly { mask: number; value: number; offset: number }[]): Buffer {
  const b = Buffer.concat([head, Buffer.alloc(24 * keys.length)]);
  b.writeUInt8(keys.length, 20);
  keys.forEach((k, i) => {
    b.writeUInt32BE(k.mask >>> 0, 24 + i * 24);
    b.writeUInt32BE(k.value >>> 0, 28 + i * 24);
    b.writeInt32LE(k.offset, 32 + i * 24);
  });
  return b;
}

export function encodeActions(w: AttrWriter, actions: Action[], devs?: DevMap): void {
  if (actions.length > TCA_ACT_MAX_PRIO) throw new VpfError(Errno.E2BIG, `more than ${TCA_ACT_MAX_PRIO} actions`);
  w.nest(3 /* TCA_FLOWER_ACT */, (x) => {
    actions.forEach((a, i) => {
      x.nest(i + 1, (y) => {
        y.string(TCA_ACT.KIND, a.kind);
        y.nest(TCA_ACT.OPTIONS, (z) => encodeOptions(z, a, devs), true);
        // m_action.c parse_action adds the cookie after the action's options.
        putCookie(y, a);
      });
    });
  });
}

// --- dump side: what act_api.c tcf_action_dump_1 and each act_*.c dump function fill ---

/** What the dump of one filter's actions carries besides the actions themselves. */
export interface ActionDumpCtx {
  /** Index of action i (tcf_idr_check_alloc's, per kind); 1 when absent. */
  index: readonly number[];
  /** How many filters hold action i (`index N` shares one): its bindcnt, and its refcnt unless `ref` says; 1 when absent. */
  bind?: readonly number[];
  /** A shared police's refcnt when it differs from its bindcnt (`tc actions add` holds one more reference); `bind` when absent. */
  ref?: readonly number[];
  /** struct tcf_t (install, lastuse, expires, firstuse) in clock_t, 32 bytes. */
  tm: Buffer;
  /** Action i's own tcf_t where it is not `tm` (a police's: act_police.c keeps its own install and last use). */
  tms?: readonly (Buffer | undefined)[];
  bytes: number;
  packets: number;
  drops: number;
  /** gnet_stats_queue.overlimits (act_police counts each exceeding packet); 0 when absent. */
  overlimits?: number;
  hw?: { packets: number; bytes: number };
  /** Action i's own counters where they are not the filter's (a shared police counts every filter bound to it). */
  own?: readonly (ActCounters | undefined)[];
  /** TCA_ACT_FLAGS_SKIP_HW / _SKIP_SW bits the filter's flags give its actions (cls_api.c tcf_exts_validate_ex). */
  actFlags: number;
}

export const TCA_ACT_FLAGS_SKIP_HW = 1 << 1;
export const TCA_ACT_FLAGS_SKIP_SW = 1 << 2;
const STATS_ATTR = { BASIC: 1, QUEUE: 3, PKT64: 8, BASIC_HW: 7 } as const;
const TM_ATTR: Record<string, number> = { csum: 2, ct: 2, police: 6 };
const ETH_P_MPLS_UC = 0x8847;
const ETH_P_8021Q = 0x8100;
const TC_LINKLAYER_ETHERNET = 1;
/** act_police.c: without an mtu the kernel uses 255 << cell_log of the rate table; iproute2's tc_calc_rtable picks cell_log 3 for its default mtu 2047. */
const POLICE_DEFAULT_MTU = 255 << 3;
const U32_MAX = 0xffffffff;

/** tc_gen as the kernel dumps it: index, capab 0, action, refcnt and bindcnt (the filters bound to it). */
function genDumpBound(size: number, index: number, control: Control, bind: number): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32LE(index >>> 0, 0);
  b.writeInt32LE(controlToWire(control) | 0, 8);
  b.writeInt32LE(bind, 12);
  b.writeInt32LE(bind, 16);
  return b;
}

/** gnet_stats_basic (u64 bytes, u32 packets, 4 pad), then TCA_STATS_PKT64 when packets do not fit 32 bits (gen_stats.c). */
function basicStats(w: AttrWriter, type: number, bytes: number, packets: number): void {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(BigInt(bytes), 0);
  b.writeUInt32LE(packets % 2 ** 32, 8);
  w.raw(type, b);
  if (packets > U32_MAX) w.u64(STATS_ATTR.PKT64, BigInt(packets));
}

/** tc_ratespec as psched_ratecfg_getrate fills it back: rate, linklayer ethernet, the rest 0. */
function ratespec(b: Buffer, off: number, rate: number | undefined): void {
  if (!rate) return;
  b.writeUInt8(TC_LINKLAYER_ETHERNET, off + 1);
  b.writeUInt32LE(Math.min(rate, U32_MAX), off + 8);
}

function dumpOptions(w: AttrWriter, a: Action, index: number, bind: number, ref: number, tm: Buffer, devs: DevMap | undefined): void {
  const tmAttr = TM_ATTR[a.kind] ?? 1;
  const genDump = (size: number, i: number, c: Control) => genDumpBound(size, i, c, bind);
  switch (a.kind) {
    case 'gact':
      w.raw(GACT_PARMS, genDump(TC_GEN, index, a.control));
      break;
    case 'mirred': {
      const b = genDump(28, index, a.control);
      b.writeInt32LE(MIRRED_EACTION[`${a.direction}-${a.op}`], 20);
      b.writeUInt32LE(ifindexOf(a.dev, devs), 24);
      w.raw(MIRRED_PARMS, b);
      break;
    }
    case 'vlan': {
      const b = genDump(24, index, a.control);
      b.writeInt32LE(a.op === 'pop' ? 1 : a.op === 'push' ? 2 : 3, 20);
      w.raw(VLAN.PARMS, b);
      if (a.op !== 'pop') {
        // act_vlan.c tcf_vlan_dump: the protocol always (802.1Q by default); a push always has a priority (0 by default).
        w.u16(VLAN.ID, a.id).be16(VLAN.PROTO, a.protocol ?? ETH_P_8021Q);
        if (a.op === 'push' || a.prio !== undefined) w.u8(VLAN.PRIO, a.prio ?? 0);
      }
      break;
    }
    case 'pedit': {
      // act_pedit.c tcf_pedit_dump: KEYS_EX (plain nests, no NLA_F_NESTED: iproute2 compares the type exactly), then PARMS_EX.
      w.nest(PEDIT.KEYS_EX, (x) => {
        for (const k of a.keys) x.nest(PEDIT.KEY_EX, (y) => y.u16(PEDIT.HTYPE, PEDIT_HTYPES.indexOf(k.htype)).u16(PEDIT.CMD, k.cmd === 'add' ? 1 : 0));
      });
      w.raw(PEDIT.PARMS_EX, peditParms(genDump(24, index, a.control), a.keys));
      break;
    }
    case 'csum': {
      const b = genDump(24, index, a.control);
      b.writeUInt32LE(a.flags, 20);
      w.raw(CSUM_PARMS, b);
      break;
    }
    case 'tunnel_key': {
      const b = genDump(24, index, a.control);
      b.writeInt32LE(a.op === 'set' ? 1 : 2, 20);
      w.raw(TK.PARMS, b);
      if (a.op === 'set') {
        // act_tunnel_key.c tunnel_key_dump: key id, addresses, port if set, no_csum always, options, tos/ttl if set.
        if (a.id !== undefined) w.be32(TK.KEY_ID, a.id);
        const ip = (s: string | undefined, v4: number, v6: number) => {
          if (s) w.raw(ipFamily(s) === 6 ? v6 : v4, Buffer.from(ipToBytes(s)));
        };
        ip(a.srcIp, TK.V4_SRC, TK.V6_SRC);
        ip(a.dstIp, TK.V4_DST, TK.V6_DST);
        if (a.dstPort) w.be16(TK.DST_PORT, a.dstPort);
        w.u8(TK.NO_CSUM, a.noCsum ? 1 : 0);
        if (a.noFrag) w.flag(TK.NO_FRAG);
        if (a.geneveOpts?.length) {
          w.nest(TK.OPTS, (x) => x.nest(1, (y) => {
            for (const g of a.geneveOpts!) y.be16(1, g.class).u8(2, g.type).raw(3, Buffer.from(hexToBytes(g.data)));
          }));
        }
        if (a.tos) w.u8(TK.TOS, a.tos);
        if (a.ttl) w.u8(TK.TTL, a.ttl);
      }
      break;
    }
    case 'ct': {
      let flags = 0;
      if (a.clear) flags |= CT_FLAG.CLEAR;
      if (a.commit) flags |= CT_FLAG.COMMIT;
      if (a.force) flags |= CT_FLAG.FORCE;
      if (a.nat) flags |= CT_FLAG.NAT | (a.nat.type === 'src' ? CT_FLAG.NAT_SRC : a.nat.type === 'dst' ? CT_FLAG.NAT_DST : 0);
      w.u16(CT.ACTION, a.clear ? CT_FLAG.CLEAR : flags);
      // act_ct.c tcf_ct_dump: clear skips straight to the parms.
      if (!a.clear) {
        if (a.mark && a.mark.mask) w.u32(CT.MARK, a.mark.value).u32(CT.MARK_MASK, a.mark.mask);
        // tcf_ct_dump_key_val: nothing when the mask is zero (`label 102/f` keeps no label).
        if (a.label && !/^0*$/.test(a.label.mask)) w.raw(CT.LABELS, Buffer.from(hexToBytes(a.label.value))).raw(CT.LABELS_MASK, Buffer.from(hexToBytes(a.label.mask)));
        w.u16(CT.ZONE, a.zone ?? 0);
        if (a.nat && a.nat.type !== 'restore') {
          // tcf_ct_dump_nat: a range always has both ends (max = min when one address or port was given).
          if (a.nat.addrMin) {
            const six = ipFamily(a.nat.addrMin) === 6;
            w.raw(six ? CT.V6_MIN : CT.V4_MIN, Buffer.from(ipToBytes(a.nat.addrMin)));
            w.raw(six ? CT.V6_MAX : CT.V4_MAX, Buffer.from(ipToBytes(a.nat.addrMax ?? a.nat.addrMin)));
          }
          if (a.nat.portMin !== undefined) w.be16(CT.PORT_MIN, a.nat.portMin).be16(CT.PORT_MAX, a.nat.portMax ?? a.nat.portMin);
        }
        if (a.helper) w.string(CT.HELPER_NAME, a.helper.name).u8(CT.HELPER_FAMILY, a.helper.family).u8(CT.HELPER_PROTO, a.helper.proto);
      }
      w.raw(CT.PARMS, genDump(TC_GEN, index, a.control));
      break;
    }
    case 'police': {
      // act_police.c tcf_police_dump: 64-bit rates first, then struct tc_police, result, avrate.
      if (a.rate && a.rate > U32_MAX) w.u64(POLICE.RATE64, BigInt(a.rate));
      if (a.peakrate && a.peakrate > U32_MAX) w.u64(POLICE.PEAKRATE64, BigInt(a.peakrate));
      if (a.pktsPerSec) {
        w.u64(POLICE.PKTRATE64, BigInt(a.pktsPerSec));
        w.u64(POLICE.PKTBURST64, BigInt(burstToTicks(a.pktBurst ?? 0, a.pktsPerSec)));
      }
      const b = Buffer.alloc(56);
      b.writeUInt32LE(index >>> 0, 0);
      b.writeInt32LE(controlToWire(a.exceed) | 0, 4);
      if (a.rate && a.burst !== undefined) b.writeUInt32LE(burstToTicks(a.burst, a.rate), 12);
      b.writeUInt32LE(a.mtu ?? (a.rate ? POLICE_DEFAULT_MTU : U32_MAX), 16);
      ratespec(b, 20, a.rate);
      ratespec(b, 32, a.peakrate);
      b.writeInt32LE(ref, 44);
      b.writeInt32LE(bind, 48);
      w.raw(POLICE.TBF, b);
      const result = controlToWire(a.control);
      if (result) w.u32(POLICE.RESULT, result);
      if (a.avrate) w.u32(POLICE.AVRATE, a.avrate);
      break;
    }
    case 'skbedit':
      w.raw(SKBEDIT.PARMS, genDump(TC_GEN, index, a.control));
      if (a.priority !== undefined) w.u32(SKBEDIT.PRIORITY, a.priority);
      if (a.queueMapping !== undefined) w.u16(SKBEDIT.QUEUE_MAPPING, a.queueMapping);
      if (a.mark) w.u32(SKBEDIT.MARK, a.mark.value);
      if (a.ptype !== undefined) w.u16(SKBEDIT.PTYPE, a.ptype);
      if (a.mark && a.mark.mask !== U32_MAX) w.u32(SKBEDIT.MASK, a.mark.mask);
      break;
    case 'sample':
      // act_sample.c tcf_sample_dump puts its tcf_t before rate and group.
      w.raw(SAMPLE.PARMS, genDump(TC_GEN, index, a.control));
      w.raw(tmAttr, tm);
      w.u32(SAMPLE.RATE, a.rate);
      if (a.trunc !== undefined) w.u32(SAMPLE.TRUNC, a.trunc);
      w.u32(SAMPLE.GROUP, a.group);
      return;
    case 'mpls': {
      const b = genDump(24, index, a.control);
      b.writeInt32LE(MPLS_OP[a.op], 20);
      w.raw(MPLS.PARMS, b);
      // act_mpls.c: a push without ttl gets ACT_MPLS_TTL_DEFAULT (255); the protocol defaults to MPLS unicast.
      const f = a.op === 'push' || a.op === 'mac_push' || a.op === 'modify' ? a : undefined;
      if (f?.label !== undefined) w.u32(MPLS.LABEL, f.label);
      if (f?.tc !== undefined) w.u8(MPLS.TC, f.tc);
      const ttl = f?.ttl ?? (a.op === 'push' || a.op === 'mac_push' ? 255 : undefined);
      if (ttl !== undefined) w.u8(MPLS.TTL, ttl);
      if (f?.bos !== undefined) w.u8(MPLS.BOS, f.bos);
      w.be16(MPLS.PROTO, a.op === 'push' || a.op === 'mac_push' || a.op === 'pop' ? a.protocol : ETH_P_MPLS_UC);
      break;
    }
  }
  w.raw(tmAttr, tm);
}

/** TCA_FLOWER_ACT of a dump: per action KIND, STATS, FLAGS, IN_HW_COUNT, OPTIONS (act_api.c tcf_action_dump_1), plain nests. */
export function encodeActionsDump(w: AttrWriter, actions: Action[], devs: DevMap | undefined, ctx: ActionDumpCtx): void {
  w.nest(3 /* TCA_FLOWER_ACT */, (x) => {
    actions.forEach((a, i) => x.nest(i + 1, (y) => encodeActionDump1(y, a, i, devs, ctx)));
  });
}

/** One action as act_api.c tcf_action_dump_1 fills it (its i-th index, bind and ref of ctx); the action API's replies use it too. */
export function encodeActionDump1(y: AttrWriter, a: Action, i: number, devs: DevMap | undefined, ctx: ActionDumpCtx & { inHwCount?: number }): void {
  y.string(TCA_ACT.KIND, a.kind);
  const counters = ctx.own?.[i] ?? ctx;
  actStats(y, counters);
  // tcf_action_dump_terse: the cookie right after the stats.
  putCookie(y, a);
  // Offloaded counters come from the driver, which reports them delayed (mlx5 FLOW_ACTION_HW_STATS_DELAYED).
  if (counters.hw) y.raw(TCA_ACT.USED_HW_STATS, bitfield32(2, 3));
  if (ctx.actFlags) y.raw(TCA_ACT.FLAGS, bitfield32(ctx.actFlags, ctx.actFlags));
  y.u32(TCA_ACT.IN_HW_COUNT, ctx.inHwCount ?? 0);
  const bind = ctx.bind?.[i] ?? 1;
  y.nest(TCA_ACT.OPTIONS, (z) => dumpOptions(z, a, ctx.index[i] ?? 1, bind, ctx.ref?.[i] ?? bind, ctx.tms?.[i] ?? ctx.tm, devs));
}

export type ActCounters = Pick<ActionDumpCtx, 'bytes' | 'packets' | 'drops' | 'overlimits' | 'hw'>;

/** TCA_ACT_STATS as tcf_action_copy_stats fills it: basic, basic_hw, queue (qlen, backlog, drops, requeues, overlimits). */
function actStats(y: AttrWriter, ctx: ActCounters): void {
  y.nest(TCA_ACT.STATS, (s) => {
    basicStats(s, STATS_ATTR.BASIC, ctx.bytes, ctx.packets);
    basicStats(s, STATS_ATTR.BASIC_HW, ctx.hw?.bytes ?? 0, ctx.hw?.packets ?? 0);
    const q = Buffer.alloc(20);
    q.writeUInt32LE(ctx.drops >>> 0, 8);
    q.writeUInt32LE((ctx.overlimits ?? 0) >>> 0, 16);
    s.raw(STATS_ATTR.QUEUE, q);
  });
}

/** act_api.c tcf_action_dump_terse with from_act: KIND, STATS, INDEX, then the cookie (TCA_ACT_FLAG_TERSE_DUMP of the action API). */
export function encodeActionTerse(y: AttrWriter, a: Action, index: number, ctx: ActCounters): void {
  y.string(TCA_ACT.KIND, a.kind);
  actStats(y, ctx);
  y.u32(TCA_ACT.INDEX, index);
  putCookie(y, a);
}

function bitfield32(value: number, selector: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(value >>> 0, 0);
  b.writeUInt32LE(selector >>> 0, 4);
  return b;
}

/** The TM attribute id of an action kind (tc_act/*.h TCA_<KIND>_TM). */
export const tmAttrOf = (kind: string): number => TM_ATTR[kind] ?? 1;
