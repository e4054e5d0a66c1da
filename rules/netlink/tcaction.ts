// The tc action API (RTM_NEWACTION / RTM_DELACTION / RTM_GETACTION): shared
// actions by index, as `tc actions add|change|replace|get|del|ls|flush` and OVS's
// meter offload (lib/tc.c tc_add_policer) send them. struct tcamsg (4 bytes:
// family, 3 pad) then TCA_ROOT_* attributes; TCA_ROOT_TAB (= TCA_ACT_TAB) holds
// the actions, each a nest numbered from 1 in a request (act_api.c
// tcf_action_init), from 0 in a dump (tcf_dump_walker) and 1 in a get reply.
// The actions themselves are the filter codec's (actions.ts): one police codec.
import { Errno, VpfError, attempt, type Result } from '../errors.js';
import type { Action } from '../model.js';
import { decodeActions, encodeActionDump1, encodeActionTerse, encodeActions, TCA_ACT, TCA_ACT_MAX_PRIO, tmAttrOf, type ActionDumpCtx } from './actions.js';
import { AttrWriter, attrMap, buildMessage, NlmF, parseAttrs, read, type Attr, type NlHeader, type NlMessage } from './nlmsg.js';

/** include/uapi/linux/rtnetlink.h */
export const RtmAction = { NEW: 48, DEL: 49, GET: 50 } as const;
/** TCA_ROOT_* (rtnetlink.h); TCA_ROOT_TAB is TCA_ACT_TAB. */
export const TCA_ROOT = { TAB: 1, FLAGS: 2, COUNT: 3, TIME_DELTA: 4, EXT_WARN_MSG: 5 } as const;
/** TCA_ROOT_FLAGS bits (TCA_ACT_FLAG_*); tcaa_policy allows only these. */
export const TCA_ACT_FLAG = { LARGE_DUMP_ON: 1, TERSE_DUMP: 2 } as const;
/** TCA_FCNT of a flush's reply (TCA_* of pkt_sched.h). */
const TCA_FCNT = 6;
const TCAMSG_LEN = 4;

/** One action a get or delete names: its kind and index (TCA_ACT_INDEX; absent = 0). */
export interface ActionRef {
  kind: string;
  index: number;
}

export type ActionRequest =
  | { op: 'new'; hdr: NlHeader; replace: boolean; actions: Action[] }
  | { op: 'get'; hdr: NlHeader; refs: ActionRef[] }
  | { op: 'del'; hdr: NlHeader; refs: ActionRef[] }
  | { op: 'flush'; hdr: NlHeader; kind: string }
  /** A dump (GET with NLM_F_DUMP): `kind` undefined when the request names none (tc_dump_action then sends nothing). */
  | { op: 'dump'; hdr: NlHeader; kind: string | undefined; flags: number; sinceMs?: number };

export const isActionMessage = (type: number): boolean => type === RtmAction.NEW || type === RtmAction.DEL || type === RtmAction.GET;

/** The TCA_ACT_KIND of one TAB entry, or undefined. */
function kindOf(entry: Attr): string | undefined {
  const k = attrMap(parseAttrs(entry.value, 'TCA_ACT_TAB entry')).get(TCA_ACT.KIND);
  return k ? read.string(k, 'TCA_ACT_KIND', 15) : undefined;
}

/** The TAB's entries in order (nla_parse_nested: by type 1..32; a later duplicate wins). */
function entries(tab: Attr): Attr[] {
  const byType = new Map<number, Attr>();
  for (const e of parseAttrs(tab.value, 'TCA_ACT_TAB')) if (e.type >= 1 && e.type <= TCA_ACT_MAX_PRIO) byType.set(e.type, e);
  // tca_action_gd and tcf_action_init stop at the first missing number.
  const out: Attr[] = [];
  for (let i = 1; byType.has(i); i++) out.push(byType.get(i)!);
  return out;
}

function decodeOne(msg: NlMessage): ActionRequest {
  if (!isActionMessage(msg.type)) throw new VpfError(Errno.EOPNOTSUPP, `message type ${msg.type} is not a tc action message`);
  if (msg.payload.length < TCAMSG_LEN) throw new VpfError(Errno.EINVAL, `tcamsg needs ${TCAMSG_LEN} bytes, got ${msg.payload.length}`);
  const hdr: NlHeader = { type: msg.type, flags: msg.flags, seq: msg.seq, pid: msg.pid };
  const root = attrMap(parseAttrs(msg.payload.subarray(TCAMSG_LEN), 'tcamsg attributes', TCAMSG_LEN));
  const tab = root.get(TCA_ROOT.TAB);
  if (msg.type === RtmAction.GET && (msg.flags & NlmF.DUMP) !== 0) {
    // tc_dump_action: TCA_ROOT_FLAGS is a bitfield32 of LARGE_DUMP_ON | TERSE_DUMP (tcaa_policy), the kind is the first entry's.
    const f = root.get(TCA_ROOT.FLAGS);
    let flags = 0;
    if (f) {
      const b = read.bytes(f, 'TCA_ROOT_FLAGS', 8);
      flags = b.readUInt32LE(0) & b.readUInt32LE(4);
      if (b.readUInt32LE(4) & ~(TCA_ACT_FLAG.LARGE_DUMP_ON | TCA_ACT_FLAG.TERSE_DUMP)) throw new VpfError(Errno.EINVAL, 'Unsupported bitfield32 selector bits', 'TCA_ROOT_FLAGS');
    }
    const since = root.get(TCA_ROOT.TIME_DELTA);
    const first = tab ? parseAttrs(tab.value, 'TCA_ACT_TAB').find((e) => e.type === 1) : undefined;
    return { op: 'dump', hdr, kind: first ? kindOf(first) : undefined, flags, ...(since ? { sinceMs: read.u32(since, 'TCA_ROOT_TIME_DELTA') } : {}) };
  }
  if (!tab) throw new VpfError(Errno.EINVAL, 'Netlink action attributes missing', 'TCA_ACT_TAB');
  if (msg.type === RtmAction.NEW) {
    // tc_ctl_action: NLM_F_REPLACE lets an existing index be changed (TCA_ACT_FLAGS_REPLACE); otherwise it is EEXIST.
    return { op: 'new', hdr, replace: (msg.flags & NlmF.REPLACE) !== 0, actions: decodeActions(tab) };
  }
  if (msg.type === RtmAction.DEL && (msg.flags & NlmF.ROOT) !== 0) {
    const first = parseAttrs(tab.value, 'TCA_ACT_TAB').find((e) => e.type === 1);
    if (!first) throw new VpfError(Errno.EINVAL, 'Invalid netlink attributes while flushing TC action', 'TCA_ACT_TAB');
    const kind = kindOf(first);
    if (!kind) throw new VpfError(Errno.EINVAL, 'Cannot flush unknown TC action', 'TCA_ACT_KIND');
    return { op: 'flush', hdr, kind };
  }
  const refs = entries(tab).map((e): ActionRef => {
    const m = attrMap(parseAttrs(e.value, 'TCA_ACT_TAB entry'));
    const idx = m.get(TCA_ACT.INDEX);
    // tcf_action_get_1: the index first, then the kind.
    if (!idx || idx.value.length < 4) throw new VpfError(Errno.EINVAL, 'Invalid TC action index value', 'TCA_ACT_INDEX');
    const k = m.get(TCA_ACT.KIND);
    if (!k) throw new VpfError(Errno.EINVAL, 'Specified TC action kind not found', 'TCA_ACT_KIND');
    return { kind: read.string(k, 'TCA_ACT_KIND', 15), index: idx.value.readUInt32LE(0) };
  });
  return msg.type === RtmAction.DEL ? { op: 'del', hdr, refs } : { op: 'get', hdr, refs };
}

/** Decodes one framed RTM_*ACTION request. Never throws: bad input is a Result error with errno and extack text. */
export function decodeActionRequest(msg: NlMessage): Result<ActionRequest> {
  return attempt(() => decodeOne(msg));
}

const tcamsg = () => Buffer.alloc(TCAMSG_LEN);

/** What `tc actions` sends for a request (iproute2 m_action.c): the inverse of decodeActionRequest. */
export function encodeActionRequest(r: ActionRequest): Buffer {
  const w = new AttrWriter();
  switch (r.op) {
    case 'new':
      // parse_action writes the same numbered entries a filter's TCA_FLOWER_ACT holds.
      w.nest(TCA_ROOT.TAB, (x) => r.actions.forEach((a, i) => x.nest(i + 1, (y) => encodeEntryOptions(y, a))));
      break;
    case 'get':
    case 'del':
      w.nest(TCA_ROOT.TAB, (x) => r.refs.forEach((ref, i) => x.nest(i + 1, (y) => {
        y.string(TCA_ACT.KIND, ref.kind);
        if (ref.index) y.u32(TCA_ACT.INDEX, ref.index);
      })));
      break;
    case 'flush':
    case 'dump':
      w.nest(TCA_ROOT.TAB, (x) => { if (r.kind) x.nest(1, (y) => y.string(TCA_ACT.KIND, r.kind!)); });
      // m_action.c tc_act_list_or_flush: each flag asked (`-br` adds TERSE_DUMP) in both value and selector.
      const asked = TCA_ACT_FLAG.LARGE_DUMP_ON | (r.op === 'dump' ? r.flags : 0);
      w.raw(TCA_ROOT.FLAGS, bitfield32(asked, asked));
      if (r.op === 'dump' && r.sinceMs) w.u32(TCA_ROOT.TIME_DELTA, r.sinceMs);
      break;
  }
  return buildMessage(r.hdr, Buffer.concat([tcamsg(), w.toBuffer()]));
}

/** One action's KIND and OPTIONS as a request carries them (actions.ts writes them for filters). */
function encodeEntryOptions(y: AttrWriter, a: Action): void {
  const one = new AttrWriter();
  encodeActions(one, [a]);
  // encodeActions wrote TCA_FLOWER_ACT { 1: { KIND, OPTIONS } }: take the entry's content.
  const entry = parseAttrs(parseAttrs(one.toBuffer(), 'act')[0]!.value, 'act')[0]!;
  for (const at of parseAttrs(entry.value, 'entry')) y.raw(at.type | (at.nested ? 0x8000 : 0), at.value);
}

function bitfield32(value: number, selector: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(value >>> 0, 0);
  b.writeUInt32LE(selector >>> 0, 4);
  return b;
}

/** One action of a reply: the action with its index, its ref and bind counts, counters and tcf_t. */
export interface DumpedAction {
  action: Action;
  index: number;
  ref: number;
  bind: number;
  counters: Pick<ActionDumpCtx, 'bytes' | 'packets' | 'drops' | 'overlimits' | 'hw'>;
  /** struct tcf_t, 32 bytes (tc.ts tcfT). */
  tm: Buffer;
  /** TCA_ACT_IN_HW_COUNT. */
  inHwCount: number;
  /** TCA_ACT_FLAGS skip bits (a classifier-created action has its filter's). */
  actFlags?: number;
}

function dumpEntry(y: AttrWriter, d: DumpedAction): void {
  encodeActionDump1(y, d.action, 0, undefined, { index: [d.index], bind: [d.bind], ref: [d.ref], tm: d.tm, actFlags: d.actFlags ?? 0, inHwCount: d.inHwCount, ...d.counters });
}

/** tcf_get_notify's reply to a get: RTM_GETACTION, flags 0, the actions numbered from 1, no TCA_ROOT_COUNT. */
export function encodeActionGetReply(hdr: Omit<NlHeader, 'type' | 'flags'>, acts: DumpedAction[]): Buffer {
  const w = new AttrWriter();
  w.nest(TCA_ROOT.TAB, (x) => acts.forEach((d, i) => x.nest(i + 1, (y) => dumpEntry(y, d))));
  return buildMessage({ ...hdr, type: RtmAction.GET, flags: 0 }, Buffer.concat([tcamsg(), w.toBuffer()]));
}

/**
 * tc_dump_action's messages for a kind's actions in index order: each
 * RTM_GETACTION (NLM_F_MULTI) with TCA_ROOT_COUNT (the number of entries when
 * LARGE_DUMP_ON was asked, else 0) and a TAB numbered from 0; without
 * LARGE_DUMP_ON at most TCA_ACT_MAX_PRIO per message. No actions: no message.
 */
export function encodeActionDump(hdr: Omit<NlHeader, 'type' | 'flags'>, acts: DumpedAction[], flags: number): Buffer[] {
  const large = (flags & TCA_ACT_FLAG.LARGE_DUMP_ON) !== 0;
  const out: Buffer[] = [];
  for (let at = 0; at < acts.length; ) {
    const part = large ? acts.slice(at) : acts.slice(at, at + TCA_ACT_MAX_PRIO);
    at += part.length;
    const w = new AttrWriter().u32(TCA_ROOT.COUNT, large ? part.length : 0);
    w.nest(TCA_ROOT.TAB, (x) => part.forEach((d, i) => x.nest(i, (y) => {
      if (flags & TCA_ACT_FLAG.TERSE_DUMP) encodeActionTerse(y, d.action, d.index, d.counters);
      else dumpEntry(y, d);
    })));
    out.push(buildMessage({ ...hdr, type: RtmAction.GET, flags: NlmF.MULTI }, Buffer.concat([tcamsg(), w.toBuffer()])));
  }
  return out;
}

/** The flush notification tca_action_flush builds (sent only with NLM_F_ECHO): RTM_DELACTION with NLM_F_ROOT, TAB { 0: KIND, FCNT }. */
export function encodeFlushReply(hdr: Omit<NlHeader, 'type' | 'flags'>, kind: string, count: number): Buffer {
  const w = new AttrWriter();
  w.nest(TCA_ROOT.TAB, (x) => x.nest(0, (y) => y.string(TCA_ACT.KIND, kind).u32(TCA_FCNT, count)));
  return buildMessage({ ...hdr, type: RtmAction.DEL, flags: NlmF.ROOT }, Buffer.concat([tcamsg(), w.toBuffer()]));
}

/** Reads a get reply or dump message back: each entry's kind, index, ref, bind (tests and vpfctl). */
export function decodeActionReply(msg: NlMessage): Result<{ count: number | undefined; actions: { order: number; action: Action; ref: number; bind: number }[] }> {
  return attempt(() => {
    const root = attrMap(parseAttrs(msg.payload.subarray(TCAMSG_LEN), 'tcamsg attributes'));
    const c = root.get(TCA_ROOT.COUNT);
    const tab = root.get(TCA_ROOT.TAB);
    const actions = (tab ? parseAttrs(tab.value, 'TCA_ACT_TAB') : []).map((e) => {
      const m = attrMap(parseAttrs(e.value, 'entry'));
      const opts = m.get(TCA_ACT.OPTIONS);
      const kindA = m.get(TCA_ACT.KIND);
      if (!kindA || !opts) throw new VpfError(Errno.EINVAL, 'action reply entry without kind or options');
      const kind = read.string(kindA, 'TCA_ACT_KIND', 15);
      const clean = new AttrWriter().nest(1, (y) => {
        y.raw(TCA_ACT.KIND, kindA.value);
        // The options without their tcf_t, which no request carries.
        y.nest(TCA_ACT.OPTIONS, (z) => parseAttrs(opts.value, 'opts').filter((o) => o.type !== tmAttrOf(kind)).forEach((o) => z.raw(o.type, o.value)));
        const cookie = m.get(TCA_ACT.COOKIE);
        if (cookie) y.raw(TCA_ACT.COOKIE, cookie.value);
      });
      const action = decodeActions({ type: 1, nested: true, value: clean.toBuffer(), offset: 0 })[0]!;
      // tc_police's refcnt and bindcnt sit at 44 and 48 of TCA_POLICE_TBF.
      const tbf = kind === 'police' ? attrMap(parseAttrs(opts.value, 'opts')).get(1) : undefined;
      return { order: e.type, action, ref: tbf?.value.readInt32LE(44) ?? 0, bind: tbf?.value.readInt32LE(48) ?? 0 };
    });
    return { count: c ? read.u32(c, 'TCA_ROOT_COUNT') : undefined, actions };
  });
}
