// RTM_*TFILTER / *QDISC / *CHAIN messages: struct tcmsg + TCA_* attributes, and
// the dump side (per-action stats, in_hw flags) that `tc -s filter show` reads.
// tcmsg (include/uapi/linux/rtnetlink.h): u8 family, 3 pad, s32 ifindex,
// u32 handle, u32 parent, u32 info = prio << 16 | htons(protocol).
import { Errno, VpfError, attempt, type Result } from '../errors.js';
import type { FilterStats, FlowerRule } from '../model.js';
import { EthP } from '../model.js';
import { devIfindex, devName, type DevMap } from '../ports.js';
import { validateRule } from '../validate.js';
import { decodeActions, encodeActions, encodeActionsDump, TCA_ACT, type ActCounters, TCA_ACT_FLAGS_SKIP_HW, TCA_ACT_FLAGS_SKIP_SW, tmAttrOf } from './actions.js';
import { decodeKeys, encodeKeys, encodeKeysDump, F, KEY_ATTRS } from './flowerKeys.js';
import { AttrWriter, attrMap, buildMessage, NlmF, parseAttrs, parseMessages, read, Rtm, type Attr, type NlHeader, type NlMessage } from './nlmsg.js';

export const TCA = { KIND: 1, OPTIONS: 2, STATS: 3, XSTATS: 4, RATE: 5, FCNT: 6, STATS2: 7, STAB: 8, PAD: 9, DUMP_INVISIBLE: 10, CHAIN: 11, HW_OFFLOAD: 12, INGRESS_BLOCK: 13, EGRESS_BLOCK: 14, DUMP_FLAGS: 15, EXT_WARN_MSG: 16 } as const;
export const TC_H = { ROOT: 0xffffffff, INGRESS: 0xfffffff1, CLSACT_INGRESS: 0xfffffff2, CLSACT_EGRESS: 0xfffffff3, INGRESS_QDISC: 0xffff0000 } as const;
export const CLS_FLAGS = { SKIP_HW: 1, SKIP_SW: 2, IN_HW: 4, NOT_IN_HW: 8, VERBOSE: 16 } as const;
const TCMSG_LEN = 20;
const STATS = { BASIC: 1, QUEUE: 3, PAD: 6, BASIC_HW: 7 } as const;

export type TcOp = 'new' | 'del' | 'get';

/** What identifies filters in a DEL/GET (any field 0 = wildcard, as in cls_api.c tc_del_tfilter). */
export interface FilterSelector {
  dev: string;
  direction: 'ingress' | 'egress';
  chain: number | undefined;
  prio: number;
  protocol: number;
  handle: number;
  kind: string | undefined;
}

export type TcMessage =
  | { type: 'filter'; op: 'new'; hdr: NlHeader; rule: FlowerRule }
  | { type: 'filter'; op: 'del' | 'get'; hdr: NlHeader; sel: FilterSelector }
  | { type: 'qdisc'; op: TcOp; hdr: NlHeader; dev: string; kind: string | undefined; parent: number; handle: number }
  | { type: 'chain'; op: TcOp; hdr: NlHeader; dev: string; direction: 'ingress' | 'egress'; chain: number | undefined };

interface Tcmsg {
  ifindex: number;
  handle: number;
  parent: number;
  info: number;
}

function readTcmsg(payload: Buffer): Tcmsg {
  if (payload.length < TCMSG_LEN) throw new VpfError(Errno.EINVAL, `tcmsg needs ${TCMSG_LEN} bytes, got ${payload.length}`);
  return { ifindex: payload.readInt32LE(4), handle: payload.readUInt32LE(8), parent: payload.readUInt32LE(12), info: payload.readUInt32LE(16) };
}

function writeTcmsg(t: Tcmsg): Buffer {
  const b = Buffer.alloc(TCMSG_LEN);
  b.writeInt32LE(t.ifindex, 4);
  b.writeUInt32LE(t.handle >>> 0, 8);
  b.writeUInt32LE(t.parent >>> 0, 12);
  b.writeUInt32LE(t.info >>> 0, 16);
  return b;
}

const swap16 = (x: number) => ((x & 0xff) << 8) | ((x >> 8) & 0xff);
const infoOf = (prio: number, protocol: number) => ((prio << 16) | swap16(protocol)) >>> 0;

function direction(parent: number): 'ingress' | 'egress' {
  if (parent === TC_H.CLSACT_INGRESS || parent === TC_H.INGRESS_QDISC) return 'ingress';
  if (parent === TC_H.CLSACT_EGRESS) return 'egress';
  throw new VpfError(Errno.EINVAL, `parent ${parent.toString(16)}: only clsact ingress/egress (or the ingress qdisc) hold flower filters here`);
}

function devOf(ifindex: number, devs?: DevMap): string {
  const d = devName(ifindex, devs);
  // cls_api.c __tcf_qdisc_find: an unknown ifindex is ENODEV.
  if (!d) throw new VpfError(Errno.ENODEV, `Cannot find specified filter chain: no representor with ifindex ${ifindex}`);
  return d;
}

const OP_OF: Record<number, [TcMessage['type'], TcOp]> = {
  [Rtm.NEWTFILTER]: ['filter', 'new'],
  [Rtm.DELTFILTER]: ['filter', 'del'],
  [Rtm.GETTFILTER]: ['filter', 'get'],
  [Rtm.NEWQDISC]: ['qdisc', 'new'],
  [Rtm.DELQDISC]: ['qdisc', 'del'],
  [Rtm.GETQDISC]: ['qdisc', 'get'],
  [Rtm.NEWCHAIN]: ['chain', 'new'],
  [Rtm.DELCHAIN]: ['chain', 'del'],
  [Rtm.GETCHAIN]: ['chain', 'get'],
};

/** The flower options of a filter (TCA_OPTIONS content) into match, actions and flags. */
function decodeFlowerOptions(opts: Attr, devs?: DevMap): Pick<FlowerRule, 'match' | 'actions' | 'flags'> {
  const attrs = attrMap(parseAttrs(opts.value, 'TCA_OPTIONS'));
  for (const t of attrs.keys()) {
    if (!KEY_ATTRS.has(t) && t !== F.ACT && t !== F.FLAGS && t !== F.IN_HW_COUNT) {
      // cls_flower.c fl_policy rejects attributes it does not know (strict validation).
      if (!isKnownUnmodelled(t)) throw new VpfError(Errno.EINVAL, `unknown flower attribute ${t}`, `TCA_FLOWER attribute ${t}`);
    }
  }
  const match = decodeKeys(attrs);
  const fl = attrs.get(F.FLAGS);
  const flags = fl ? read.u32(fl, 'TCA_FLOWER_FLAGS') : 0;
  if (flags & ~(CLS_FLAGS.SKIP_HW | CLS_FLAGS.SKIP_SW | CLS_FLAGS.VERBOSE | CLS_FLAGS.IN_HW | CLS_FLAGS.NOT_IN_HW)) {
    throw new VpfError(Errno.EINVAL, `unknown TCA_FLOWER_FLAGS bits 0x${flags.toString(16)}`, 'TCA_FLOWER_FLAGS');
  }
  if ((flags & CLS_FLAGS.SKIP_HW) && (flags & CLS_FLAGS.SKIP_SW)) {
    // fl_change: !tc_flags_valid() is a bare -EINVAL (no extack), so tc prints "RTNETLINK answers: Invalid argument".
    throw new VpfError(Errno.EINVAL, '', 'TCA_FLOWER_FLAGS');
  }
  const act = attrs.get(F.ACT);
  return {
    match,
    actions: act ? decodeActions(act, devs) : [],
    flags: { skipHw: !!(flags & CLS_FLAGS.SKIP_HW), skipSw: !!(flags & CLS_FLAGS.SKIP_SW), verbose: !!(flags & CLS_FLAGS.VERBOSE) },
  };
}

function isKnownUnmodelled(t: number): boolean {
  // decodeKeys refuses these by name with EOPNOTSUPP; let it.
  return [1, 43, 44, 99, 100, 101, 103, 104, 105, 106, 107, 108, 109, 110, 111].includes(t);
}

function decodeOne(msg: NlMessage, devs?: DevMap): TcMessage {
  const what = OP_OF[msg.type];
  if (!what) throw new VpfError(Errno.EOPNOTSUPP, `message type ${msg.type} is not a tc message`);
  const [type, op] = what;
  const t = readTcmsg(msg.payload);
  const attrs = attrMap(parseAttrs(msg.payload.subarray(TCMSG_LEN), 'tcmsg attributes', TCMSG_LEN));
  const hdr: NlHeader = { type: msg.type, flags: msg.flags, seq: msg.seq, pid: msg.pid };
  const kindA = attrs.get(TCA.KIND);
  const kind = kindA ? read.string(kindA, 'TCA_KIND', 15) : undefined;
  const chainA = attrs.get(TCA.CHAIN);
  const chain = chainA ? read.u32(chainA, 'TCA_CHAIN') : undefined;
  if (chain !== undefined && chain > 0x0fffffff) {
    // cls_api.c tcf_chain_index: chain indexes are limited to TC_ACT_EXT_VAL_MASK.
    throw new VpfError(Errno.EINVAL, 'Specified chain index exceeds upper limit', 'TCA_CHAIN');
  }
  const isDump = (msg.flags & NlmF.DUMP) === NlmF.DUMP && op === 'get';
  if (type === 'qdisc') {
    return { type, op, hdr, dev: t.ifindex === 0 && isDump ? '' : devOf(t.ifindex, devs), kind, parent: t.parent, handle: t.handle };
  }
  const dev = t.ifindex === 0 && isDump ? '' : devOf(t.ifindex, devs);
  const dir = isDump && t.parent === 0 ? 'ingress' : direction(t.parent);
  if (type === 'chain') return { type, op, hdr, dev, direction: dir, chain };
  const prio = t.info >>> 16;
  const protocol = swap16(t.info & 0xffff);
  if (op !== 'new') {
    return { type, op, hdr, sel: { dev, direction: dir, chain, prio, protocol, handle: t.handle, kind } };
  }
  if (kind !== 'flower') {
    throw new VpfError(kind ? Errno.EOPNOTSUPP : Errno.EINVAL, kind ? `classifier '${kind}' cannot be offloaded; only flower` : 'missing TCA_KIND', 'TCA_KIND');
  }
  const opts = attrs.get(TCA.OPTIONS);
  const body = opts ? decodeFlowerOptions(opts, devs) : { match: {}, actions: [], flags: { skipHw: false, skipSw: false, verbose: false } };
  const rule: FlowerRule = { dev, direction: dir, chain: chain ?? 0, prio, handle: t.handle, protocol, ...body };
  const err = validateRule(rule);
  if (err) throw err;
  return { type, op, hdr, rule };
}

/** Decodes exactly one tc message. Never throws: bad input is a Result error with errno and extack text. */
export function decodeTcMessage(buf: Buffer | Uint8Array, opts: { devs?: DevMap } = {}): Result<TcMessage> {
  return attempt(() => {
    const msgs = parseMessages(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
    if (msgs.length !== 1) throw new VpfError(Errno.EINVAL, `expected one netlink message, got ${msgs.length}`);
    return decodeOne(msgs[0]!, opts.devs);
  });
}

/** Decodes an already-framed message (the channel splits the stream itself). */
export function decodeTcNlMessage(msg: NlMessage, opts: { devs?: DevMap } = {}): Result<TcMessage> {
  return attempt(() => decodeOne(msg, opts.devs));
}

function ifindexOf(dev: string, devs?: DevMap): number {
  if (dev === '') return 0;
  const i = devIfindex(dev, devs);
  if (i === undefined) throw new VpfError(Errno.ENODEV, `no representor named ${dev}`);
  return i;
}

const parentOf = (d: 'ingress' | 'egress') => (d === 'ingress' ? TC_H.CLSACT_INGRESS : TC_H.CLSACT_EGRESS);

function flowerOptions(rule: FlowerRule, devs: DevMap | undefined): AttrWriter {
  const o = new AttrWriter();
  encodeKeys(o, rule.match);
  if (rule.actions.length) encodeActions(o, rule.actions, devs);
  const flags = (rule.flags.skipHw ? CLS_FLAGS.SKIP_HW : 0) | (rule.flags.skipSw ? CLS_FLAGS.SKIP_SW : 0) | (rule.flags.verbose ? CLS_FLAGS.VERBOSE : 0);
  o.u32(F.FLAGS, flags);
  return o;
}

/** RTM_NEWTFILTER as `tc filter add|replace|change` sends it. */
export function encodeFilterRequest(rule: FlowerRule, hdr: Partial<NlHeader> = {}, devs?: DevMap): Buffer {
  const w = new AttrWriter();
  w.string(TCA.KIND, 'flower');
  if (rule.chain) w.u32(TCA.CHAIN, rule.chain);
  const opts = flowerOptions(rule, devs);
  w.raw(TCA.OPTIONS | 0x8000, opts.toBuffer());
  const tcm = writeTcmsg({ ifindex: ifindexOf(rule.dev, devs), handle: rule.handle, parent: parentOf(rule.direction), info: infoOf(rule.prio, rule.protocol) });
  return buildMessage(
    { type: Rtm.NEWTFILTER, flags: hdr.flags ?? NlmF.REQUEST | NlmF.ACK | NlmF.EXCL | NlmF.CREATE, seq: hdr.seq ?? 1, pid: hdr.pid ?? 0 },
    Buffer.concat([tcm, w.toBuffer()]),
  );
}

/** RTM_DELTFILTER / RTM_GETTFILTER for a selector (`tc filter del|get|show`). */
export function encodeFilterSelect(op: 'del' | 'get', sel: FilterSelector, hdr: Partial<NlHeader> = {}, devs?: DevMap): Buffer {
  const w = new AttrWriter();
  if (sel.kind) w.string(TCA.KIND, sel.kind);
  if (sel.chain !== undefined) w.u32(TCA.CHAIN, sel.chain);
  const tcm = writeTcmsg({ ifindex: ifindexOf(sel.dev, devs), handle: sel.handle, parent: parentOf(sel.direction), info: infoOf(sel.prio, sel.protocol) });
  const type = op === 'del' ? Rtm.DELTFILTER : Rtm.GETTFILTER;
  const flags = hdr.flags ?? (op === 'del' ? NlmF.REQUEST | NlmF.ACK : NlmF.REQUEST | NlmF.DUMP);
  return buildMessage({ type, flags, seq: hdr.seq ?? 1, pid: hdr.pid ?? 0 }, Buffer.concat([tcm, w.toBuffer()]));
}

export function encodeQdiscRequest(op: TcOp, dev: string, kind: string, hdr: Partial<NlHeader> = {}, devs?: DevMap): Buffer {
  const w = new AttrWriter().string(TCA.KIND, kind);
  // tc qdisc add dev X clsact: parent TC_H_CLSACT (= TC_H_INGRESS), handle ffff:0.
  const tcm = writeTcmsg({ ifindex: ifindexOf(dev, devs), handle: 0xffff0000, parent: TC_H.INGRESS, info: 0 });
  const type = op === 'new' ? Rtm.NEWQDISC : op === 'del' ? Rtm.DELQDISC : Rtm.GETQDISC;
  const flags = hdr.flags ?? (op === 'new' ? NlmF.REQUEST | NlmF.ACK | NlmF.EXCL | NlmF.CREATE : NlmF.REQUEST | NlmF.ACK);
  return buildMessage({ type, flags, seq: hdr.seq ?? 1, pid: hdr.pid ?? 0 }, Buffer.concat([tcm, w.toBuffer()]));
}

export function encodeChainRequest(op: TcOp, dev: string, dir: 'ingress' | 'egress', chain: number | undefined, hdr: Partial<NlHeader> = {}, devs?: DevMap): Buffer {
  const w = new AttrWriter();
  if (chain !== undefined) w.u32(TCA.CHAIN, chain);
  const tcm = writeTcmsg({ ifindex: ifindexOf(dev, devs), handle: 0, parent: parentOf(dir), info: 0 });
  const type = op === 'new' ? Rtm.NEWCHAIN : op === 'del' ? Rtm.DELCHAIN : Rtm.GETCHAIN;
  const flags = hdr.flags ?? (op === 'new' ? NlmF.REQUEST | NlmF.ACK | NlmF.EXCL | NlmF.CREATE : op === 'get' ? NlmF.REQUEST | NlmF.DUMP : NlmF.REQUEST | NlmF.ACK);
  return buildMessage({ type, flags, seq: hdr.seq ?? 1, pid: hdr.pid ?? 0 }, Buffer.concat([tcm, w.toBuffer()]));
}

// --- dump side ---

/** USER_HZ: tcf_t times are reported in clock_t (jiffies_to_clock_t), 100 per second. */
const USER_HZ = 100;
const toClock = (ms: number) => BigInt(Math.max(0, Math.floor((ms * USER_HZ) / 1000)));

/** struct tcf_t as tcf_tm_dump fills it: install, lastuse, expires (0), firstuse (0 until the first match). */
export function tcfT(stats: ActTimes): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(toClock(stats.installedMs), 0);
  b.writeBigUInt64LE(toClock(stats.lastUsedMs), 8);
  b.writeBigUInt64LE(toClock(stats.firstUsedMs ?? 0), 24);
  return b;
}

/** An action's struct tcf_t before clock_t: milliseconds since its install, its last use and its first use (absent or 0: never used). */
export type ActTimes = Pick<FilterStats, 'installedMs' | 'lastUsedMs' | 'firstUsedMs'>;

/**
 * A filter's counters as a dump shows them: the filter's, and action i's own where it keeps them
 * (a police counts its meter's; an action after it, what it let through) and its own tcf_t where
 * that is not the filter's (a police's install and last use are the action's, act_police.c).
 */
export interface DumpStats extends FilterStats {
  actions?: readonly (ActCounters | undefined)[];
  actionTimes?: readonly (ActTimes | undefined)[];
}

export interface FilterDumpOptions {
  /** Each action's index (C6: allocated per VM and kind); else action.index, else 1. */
  actionIndex?: readonly number[];
  /** How many filters are bound to each action (several when `index N` shares one): its ref and bind counts; 1 when absent. */
  actionBind?: readonly number[];
  /** Each action's refcnt where it differs from its bind count (a police `tc actions add` created holds one more); the bind count when absent. */
  actionRef?: readonly number[];
}

/**
 * One RTM_NEWTFILTER of a dump, byte for byte as a 6.1 kernel fills it
 * (cls_api.c tcf_fill_node, cls_flower.c fl_dump, act_api.c tcf_exts_dump):
 * KIND, CHAIN, then OPTIONS with the keys as fl_dump_key puts them, FLAGS
 * (with in_hw/not_in_hw), IN_HW_COUNT and the actions with their stats.
 */
export function encodeFilterDump(rule: FlowerRule, stats: DumpStats, hdr: NlHeader, devs?: DevMap, opts: FilterDumpOptions = {}): Buffer {
  const w = new AttrWriter();
  w.string(TCA.KIND, 'flower');
  w.u32(TCA.CHAIN, rule.chain);
  w.nest(TCA.OPTIONS, (o) => {
    encodeKeysDump(o, rule.match);
    const flags = (rule.flags.skipHw ? CLS_FLAGS.SKIP_HW : 0) | (rule.flags.skipSw ? CLS_FLAGS.SKIP_SW : 0) | (rule.flags.verbose ? CLS_FLAGS.VERBOSE : 0) | (stats.inHw ? CLS_FLAGS.IN_HW : CLS_FLAGS.NOT_IN_HW);
    o.u32(F.FLAGS, flags);
    o.u32(F.IN_HW_COUNT, stats.inHwCount);
    if (rule.actions.length) {
      encodeActionsDump(o, rule.actions, devs, {
        index: rule.actions.map((a, i) => opts.actionIndex?.[i] ?? a.index ?? 1),
        ...(opts.actionBind ? { bind: opts.actionBind } : {}),
        ...(opts.actionRef ? { ref: opts.actionRef } : {}),
        tm: tcfT(stats),
        ...(stats.actionTimes ? { tms: stats.actionTimes.map((t) => t && tcfT(t)) } : {}),
        bytes: stats.bytes,
        packets: stats.packets,
        drops: stats.drops,
        ...(stats.hw ? { hw: stats.hw } : {}),
        ...(stats.actions ? { own: stats.actions } : {}),
        actFlags: (rule.flags.skipHw ? TCA_ACT_FLAGS_SKIP_HW : 0) | (rule.flags.skipSw ? TCA_ACT_FLAGS_SKIP_SW : 0),
      });
    }
  });
  const tcm = writeTcmsg({ ifindex: ifindexOf(rule.dev, devs), handle: rule.handle, parent: parentOf(rule.direction), info: infoOf(rule.prio, rule.protocol) });
  return buildMessage(hdr, Buffer.concat([tcm, w.toBuffer()]));
}

/** The bare entry tcf_fill_node(..., fh = NULL) emits for a (chain, prio) before its filters: handle 0, KIND and CHAIN. */
export function encodeFilterHead(h: { dev: string; direction: 'ingress' | 'egress'; chain: number; prio: number; protocol: number }, hdr: NlHeader, devs?: DevMap): Buffer {
  const w = new AttrWriter().string(TCA.KIND, 'flower').u32(TCA.CHAIN, h.chain);
  const tcm = writeTcmsg({ ifindex: ifindexOf(h.dev, devs), handle: 0, parent: parentOf(h.direction), info: infoOf(h.prio, h.protocol) });
  return buildMessage(hdr, Buffer.concat([tcm, w.toBuffer()]));
}

/** RTM_NEWCHAIN as tc_chain_fill_node fills it: parent is the qdisc's handle (clsact ffff:), TCA_CHAIN only (no template). */
export function encodeChainReply(h: { dev: string; direction: 'ingress' | 'egress'; chain: number }, hdr: NlHeader, devs?: DevMap): Buffer {
  void h.direction; // both directions hang off the one clsact qdisc, whose handle is the parent
  const w = new AttrWriter().u32(TCA.CHAIN, h.chain);
  const tcm = writeTcmsg({ ifindex: ifindexOf(h.dev, devs), handle: 0, parent: TC_H.INGRESS_QDISC, info: 0 });
  return buildMessage(hdr, Buffer.concat([tcm, w.toBuffer()]));
}

const VLAN_TPIDS = new Set<number>([EthP.VLAN_8021Q, EthP.VLAN_8021AD]);
const ACT_DUMP_ONLY = new Set<number>([TCA_ACT.STATS, TCA_ACT.FLAGS, TCA_ACT.HW_STATS, TCA_ACT.USED_HW_STATS, TCA_ACT.IN_HW_COUNT]);

/**
 * Reads a dump entry back: the rule and its stats. The rule is what the
 * kernel holds, kernel defaults included (a vlan push's priority 0, ct's
 * zone 0, police's mtu...), so encodeFilterDump of it gives the same bytes.
 */
export function decodeFilterDump(msg: NlMessage, devs?: DevMap): Result<{ rule: FlowerRule; stats: DumpStats }> {
  return attempt(() => {
    const t = readTcmsg(msg.payload);
    const attrs = attrMap(parseAttrs(msg.payload.subarray(TCMSG_LEN), 'tcmsg attributes'));
    const optsA = attrs.get(TCA.OPTIONS);
    if (!optsA) throw new VpfError(Errno.EINVAL, 'dump entry without TCA_OPTIONS');
    const o = attrMap(parseAttrs(optsA.value, 'TCA_OPTIONS'));
    const flags = o.get(F.FLAGS) ? read.u32(o.get(F.FLAGS)!, 'TCA_FLOWER_FLAGS') : 0;
    const hwCount = o.get(F.IN_HW_COUNT) ? read.u32(o.get(F.IN_HW_COUNT)!, 'TCA_FLOWER_IN_HW_COUNT') : 0;
    const stats: DumpStats = { packets: 0, bytes: 0, lastUsedMs: 0, installedMs: 0, drops: 0, inHw: !!(flags & CLS_FLAGS.IN_HW), inHwCount: hwCount };
    const own: ActCounters[] = [];
    const times: (ActTimes | undefined)[] = [];
    const act = o.get(F.ACT);
    const clean = new AttrWriter();
    for (const [type, a] of o) {
      if (type === F.ACT || type === F.IN_HW_COUNT) continue;
      if (type === F.FLAGS) clean.u32(F.FLAGS, flags & ~(CLS_FLAGS.IN_HW | CLS_FLAGS.NOT_IN_HW));
      else clean.raw(type, a.value);
    }
    if (act) {
      clean.nest(F.ACT, (x) => {
        for (const e of parseAttrs(act.value, 'act')) {
          const tm = tmAttrOf(kindOf(e));
          times.push(undefined);
          x.nest(e.type, (y) => {
            const entry = parseAttrs(e.value, 'act entry');
            // TCA_ACT_USED_HW_STATS marks an action in hardware (act_api.c, used_hw_stats_valid): its counters are kept even at 0.
            const inHw = entry.some((a) => a.type === TCA_ACT.USED_HW_STATS);
            for (const a of entry) {
              if (a.type === TCA_ACT.STATS) own.push(readActStats(a, stats, inHw));
              else if (a.type === TCA_ACT.OPTIONS) {
                y.nest(TCA_ACT.OPTIONS, (z) => {
                  for (const inner of parseAttrs(a.value, 'opts')) {
                    if (inner.type === tm && inner.value.length === 32) times[times.length - 1] = readTcfT(inner.value);
                    else z.raw(inner.type, inner.value);
                  }
                });
              } else if (!ACT_DUMP_ONLY.has(a.type)) y.raw(a.type, a.value);
            }
          });
        }
      });
    }
    // Each action's own counters, where one differs from the filter's (a shared police's are its own: act_police.c).
    if (own.some((c) => !sameCounters(c, stats))) stats.actions = own;
    // The filter's tcf_t is its first action's; each action's own where it differs (a police's, one no packet reached).
    const first = times.find((t) => t);
    if (first) {
      Object.assign(stats, first);
      if (times.some((t) => t && !sameTimes(t, first))) stats.actionTimes = times.map((t) => (t && !sameTimes(t, first) ? t : undefined));
    }
    const body = decodeFlowerOptions({ type: TCA.OPTIONS, nested: true, value: clean.toBuffer(), offset: 0 }, devs);
    const chainA = attrs.get(TCA.CHAIN);
    const protocol = swap16(t.info & 0xffff);
    // fl_dump_key reports the inner ethertype; the model keeps the one the filter names (the outer TPID).
    if (VLAN_TPIDS.has(protocol)) body.match.ethType = protocol;
    const rule: FlowerRule = {
      dev: devOf(t.ifindex, devs),
      direction: direction(t.parent),
      chain: chainA ? read.u32(chainA, 'TCA_CHAIN') : 0,
      prio: t.info >>> 16,
      handle: t.handle,
      protocol,
      ...body,
    };
    return { rule, stats };
  });
}

/**
 * Counters of one action, returned; the filter's are the largest over its actions, as OVS lib/tc.c reads them
 * (every action but a shared police counts the filter's packets).
 */
function readActStats(a: Attr, stats: FilterStats, inHw: boolean): ActCounters {
  const s = attrMap(parseAttrs(a.value, 'TCA_ACT_STATS'));
  const basic = (type: number) => {
    const b = s.get(type);
    return b && b.value.length >= 12 ? { bytes: Number(b.value.readBigUInt64LE(0)), packets: b.value.readUInt32LE(8) } : undefined;
  };
  const own: ActCounters = { bytes: 0, packets: 0, drops: 0 };
  const sw = basic(STATS.BASIC);
  if (sw) {
    Object.assign(own, sw);
    stats.bytes = Math.max(stats.bytes, sw.bytes);
    stats.packets = Math.max(stats.packets, sw.packets);
  }
  const hw = basic(STATS.BASIC_HW);
  if (hw && (inHw || hw.bytes || hw.packets)) {
    own.hw = hw;
    stats.hw = { bytes: Math.max(stats.hw?.bytes ?? 0, hw.bytes), packets: Math.max(stats.hw?.packets ?? 0, hw.packets) };
  }
  const q = s.get(STATS.QUEUE);
  if (q && q.value.length >= 12) {
    own.drops = q.value.readUInt32LE(8);
    stats.drops = Math.max(stats.drops, own.drops);
  }
  if (q && q.value.length >= 20 && q.value.readUInt32LE(16)) own.overlimits = q.value.readUInt32LE(16);
  return own;
}

/** A dumped struct tcf_t (clock_t, USER_HZ) back to milliseconds; firstuse only once used. */
function readTcfT(b: Buffer): ActTimes {
  const ms = (off: number) => Number(b.readBigUInt64LE(off)) * (1000 / USER_HZ);
  const first = ms(24);
  return { installedMs: ms(0), lastUsedMs: ms(8), ...(first ? { firstUsedMs: first } : {}) };
}

function sameTimes(a: ActTimes, b: ActTimes): boolean {
  return a.installedMs === b.installedMs && a.lastUsedMs === b.lastUsedMs && (a.firstUsedMs ?? 0) === (b.firstUsedMs ?? 0);
}

function sameCounters(a: ActCounters, f: FilterStats): boolean {
  return a.packets === f.packets && a.bytes === f.bytes && a.drops === f.drops && !a.overlimits && a.hw?.packets === f.hw?.packets && a.hw?.bytes === f.hw?.bytes;
}

function kindOf(e: Attr): string {
  const k = attrMap(parseAttrs(e.value, 'act entry')).get(TCA_ACT.KIND);
  return k ? read.string(k, 'TCA_ACT_KIND', 15) : '';
}

export { EthP };
