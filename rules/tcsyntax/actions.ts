// Actions in tc syntax (tc-actions(8) and each tc-<kind>(8)). Defaults are what
// iproute2 sends when no control is typed: gact is its own verdict, mirred
// redirect is stolen and mirror pipe, csum and pedit ok, police conform ok /
// exceed reclassify, everything else pipe (m_*.c parse_action_control_dflt).
import { Errno, VpfError } from '../errors.js';
import { bytesToHex, hexToBytes } from '../addr.js';
import type { Action, Control, CtAction, GeneveOpt, MplsAction, PoliceAction, SkbeditAction, TunnelKeyAction, VlanAction } from '../model.js';
import { bad, decOrHex, ethProto, ethProtoName, ipOrBad, printRate, rate, size, uint, type Tokens } from './lex.js';
import { parseLabel } from './keys.js';
import { parseMunge, printMunge } from './pedit.js';
import { burstToTicks, ticksToBurst } from '../psched.js';

const CONTROL_WORDS = ['pass', 'ok', 'drop', 'shot', 'pipe', 'continue', 'reclassify', 'trap', 'stolen', 'goto', 'jump'];

export function parseControlWord(t: Tokens, w: string): Control {
  switch (w) {
    case 'pass':
    case 'ok':
      return { kind: 'pass' };
    case 'drop':
    case 'shot':
      return { kind: 'drop' };
    case 'pipe':
      return { kind: 'pipe' };
    case 'continue':
      return { kind: 'continue' };
    case 'reclassify':
      return { kind: 'reclassify' };
    case 'trap':
      return { kind: 'trap' };
    case 'stolen':
      return { kind: 'stolen' };
    case 'goto': {
      if (t.next('goto') !== 'chain') bad('"goto" must be followed by "chain"', 'goto');
      return { kind: 'goto', chain: uint(t.next('goto chain'), 'goto chain', 0x0fffffff, 10) };
    }
    case 'jump':
      return { kind: 'jump', count: uint(t.next('jump'), 'jump', 0x0fffffff, 10) };
  }
  return bad(`bad control "${w}"`, w);
}

/** Optional trailing control of an action (its verdict), or the kind's default. */
function control(t: Tokens, dflt: Control): Control {
  const w = t.peek();
  if (w && CONTROL_WORDS.includes(w)) {
    t.take();
    return parseControlWord(t, w);
  }
  return dflt;
}

export function printControl(c: Control): string[] {
  if (c.kind === 'goto') return ['goto', 'chain', String(c.chain)];
  if (c.kind === 'jump') return ['jump', String(c.count)];
  return [c.kind];
}

const sameControl = (a: Control, b: Control) => JSON.stringify(a) === JSON.stringify(b);
const PIPE: Control = { kind: 'pipe' };
const PASS: Control = { kind: 'pass' };

function index(t: Tokens): number | undefined {
  // tc_util.c parse_action_control / m_*.c: get_u32(&index, *argv, 10).
  return t.accept('index') ? uint(t.next('index'), 'index', 0xffffffff, 10) : undefined;
}
const withIndex = <T extends Action>(a: T, i: number | undefined): T => (i ? { ...a, index: i } : a);

function parseMirred(t: Tokens): Action {
  const d = t.next('mirred');
  if (d !== 'egress' && d !== 'ingress') bad(`mirred: expected egress or ingress, got "${d}"`, 'mirred');
  const op = t.next('mirred');
  if (op !== 'redirect' && op !== 'mirror') bad(`mirred: expected redirect or mirror, got "${op}"`, 'mirred');
  if (t.accept('blockid')) throw new VpfError(Errno.EOPNOTSUPP, 'mirred blockid is not supported by vpf', 'blockid');
  if (t.next('mirred') !== 'dev') bad('mirred: expected "dev"', 'mirred');
  const dev = t.next('dev');
  const i = index(t);
  // m_mirred.c parses a control only for mirror; after redirect the next word starts the next action.
  const c = op === 'redirect' ? { kind: 'stolen' as const } : control(t, PIPE);
  return withIndex({ kind: 'mirred', direction: d as 'egress', op: op as 'redirect', dev, control: c }, i);
}

function parseVlan(t: Tokens): Action {
  const op = t.next('vlan');
  let a: VlanAction;
  if (op === 'pop') a = { kind: 'vlan', op: 'pop', control: PIPE };
  else if (op === 'push' || op === 'modify') {
    let id: number | undefined, prio: number | undefined, protocol: number | undefined;
    for (;;) {
      if (t.accept('id')) id = uint(t.next('id'), 'vlan id', 4095);
      else if (t.accept('priority')) prio = uint(t.next('priority'), 'vlan priority', 7);
      else if (t.accept('protocol')) protocol = ethProto(t.next('protocol'), 'vlan protocol');
      else break;
    }
    if (id === undefined) return bad(`vlan ${op}: "id" is required`, 'vlan');
    a = { kind: 'vlan', op, id, ...(prio !== undefined ? { prio } : {}), ...(protocol !== undefined ? { protocol } : {}), control: PIPE };
  } else if (op === 'pop_eth' || op === 'push_eth') throw new VpfError(Errno.EOPNOTSUPP, `vlan ${op} is not supported by vpf`, 'vlan');
  else return bad(`vlan: expected pop, push or modify, got "${op}"`, 'vlan');
  const i = index(t);
  return withIndex({ ...a, control: control(t, PIPE) }, i);
}

function parsePedit(t: Tokens): Action {
  if (!t.accept('ex')) throw new VpfError(Errno.EOPNOTSUPP, 'pedit without "ex" (legacy offsets) is not supported by vpf', 'pedit');
  const keys = [];
  while (t.accept('munge')) keys.push(...parseMunge(t));
  if (keys.length === 0) bad('pedit: at least one "munge" is required', 'pedit');
  const i = index(t);
  return withIndex({ kind: 'pedit', keys, control: control(t, PASS) }, i);
}

const CSUM_FLAGS: [string[], number][] = [[['iph', 'ip4h', 'ipv4h'], 1], [['icmp'], 2], [['igmp'], 4], [['tcp'], 8], [['udp'], 16], [['udplite'], 32], [['sctp'], 64]];

/** m_csum.c parse_csum_args uses matches(): any prefix of a name, the first name in its order winning ("i" is iph, "udp" udp). */
const csumFlag = (w: string | undefined) => (w ? CSUM_FLAGS.find(([names]) => names.some((n) => n.startsWith(w))) : undefined);

function parseCsum(t: Tokens): Action {
  let flags = 0;
  for (;;) {
    const w = t.peek();
    const f = w === 'and' ? undefined : csumFlag(w);
    if (f) {
      t.take();
      flags |= f[1];
    } else if (w === 'and') t.take();
    else break;
  }
  if (!flags) bad('csum: at least one header (ip4h, tcp, udp...) is required', 'csum');
  const i = index(t);
  return withIndex({ kind: 'csum', flags, control: control(t, PASS) }, i);
}

function parseGeneveList(s: string): GeneveOpt[] {
  return s.split(',').map((o) => {
    const [c, ty, d] = o.split(':');
    if (c === undefined || ty === undefined || !d || !/^([0-9a-fA-F]{8})+$/.test(d)) bad(`Illegal "geneve_opts": '${o}'`, 'geneve_opts');
    return { class: uint(`0x${c}`, 'geneve class', 0xffff), type: uint(`0x${ty}`, 'geneve type', 0xff), data: bytesToHex(hexToBytes(d!)) };
  });
}

function parseTunnelKey(t: Tokens): Action {
  const op = t.next('tunnel_key');
  let a: TunnelKeyAction;
  if (op === 'unset') a = { kind: 'tunnel_key', op: 'unset', control: PIPE };
  else if (op === 'set') {
    // m_tunnel_key.c always sends TCA_TUNNEL_KEY_NO_CSUM (0 unless `nocsum`).
    const s: Extract<TunnelKeyAction, { op: 'set' }> = { kind: 'tunnel_key', op: 'set', noCsum: false, control: PIPE };
    for (;;) {
      const w = t.peek();
      if (w === 'src_ip') s.srcIp = ipOrBad((t.take(), t.next(w)), w);
      else if (w === 'dst_ip') s.dstIp = ipOrBad((t.take(), t.next(w)), w);
      else if (w === 'id') s.id = uint((t.take(), t.next(w)), 'id', 0xffffffff, 10);
      else if (w === 'dst_port') s.dstPort = uint((t.take(), t.next(w)), 'dst_port', 0xffff, 10);
      else if (w === 'tos') s.tos = decOrHex((t.take(), t.next(w)), 'tos', 0xff);
      else if (w === 'ttl') s.ttl = decOrHex((t.take(), t.next(w)), 'ttl', 0xff);
      else if (w === 'csum') (t.take(), (s.noCsum = false));
      else if (w === 'nocsum') (t.take(), (s.noCsum = true));
      else if (w === 'nofrag') (t.take(), (s.noFrag = true));
      else if (w === 'geneve_opts') s.geneveOpts = parseGeneveList((t.take(), t.next(w)));
      else if (w === 'vxlan_opts' || w === 'erspan_opts' || w === 'gtp_opts') throw new VpfError(Errno.EOPNOTSUPP, `tunnel_key ${w} is not supported by vpf`, w);
      else break;
    }
    // m_tunnel_key.c: "set needs tunnel_key parameters" unless both addresses are given.
    if (!s.srcIp || !s.dstIp) bad('tunnel_key set needs src_ip and dst_ip', 'tunnel_key');
    a = s;
  } else return bad(`tunnel_key: expected set or unset, got "${op}"`, 'tunnel_key');
  const i = index(t);
  return withIndex({ ...a, control: control(t, PIPE) }, i);
}

function range(s: string, what: string, one: (x: string) => string | number): [string | number, string | number] {
  const [lo, hi] = s.split('-');
  return [one(lo!), one(hi ?? lo!)];
}

function parseCt(t: Tokens): Action {
  const a: CtAction = { kind: 'ct', control: PIPE };
  let clear = false;
  for (;;) {
    const w = t.peek();
    if (w === 'clear') (t.take(), (clear = true));
    else if (w === 'commit') (t.take(), (a.commit = true));
    else if (w === 'force') (t.take(), (a.force = true));
    else if (w === 'zone') a.zone = uint((t.take(), t.next(w)), 'ct zone', 0xffff);
    else if (w === 'mark') {
      t.take();
      const [v, m] = t.next('mark').split('/');
      a.mark = { value: uint(v!, 'ct mark'), mask: m === undefined ? 0xffffffff : uint(m, 'ct mark mask') };
    } else if (w === 'label') {
      t.take();
      // m_ct.c reads labels as flower does (hex pairs, zero-filled).
      a.label = parseLabel(t.next('label'), 'label');
    } else if (w === 'nat') {
      t.take();
      const type = t.accept('src', 'dst') as 'src' | 'dst' | undefined;
      a.nat = { type: type ?? 'restore' };
      if (type) {
        // m_ct.c ct_parse_nat_addr_range: src/dst need an address range, a port range is optional.
        if (!t.accept('addr')) bad(`ct nat ${type}: "addr" is required`, 'nat');
        const [lo, hi] = range(t.next('addr'), 'addr', (x) => ipOrBad(x, 'nat addr'));
        a.nat.addrMin = lo as string;
        a.nat.addrMax = hi as string;
        if (t.accept('port')) {
          const [plo, phi] = range(t.next('port'), 'port', (x) => uint(x, 'nat port', 0xffff));
          a.nat.portMin = plo as number;
          a.nat.portMax = phi as number;
        }
      }
    } else if (w === 'helper') throw new VpfError(Errno.EOPNOTSUPP, 'ct helpers (ALGs) cannot be offloaded', 'helper');
    else break;
  }
  // m_ct.c: clear sends nothing else; nat src/dst only with commit, and commit with nat only with src/dst.
  const i = index(t);
  if (clear) return withIndex({ kind: 'ct', clear: true, control: control(t, PIPE) } as CtAction, i);
  ctCheck(a);
  return withIndex({ ...a, control: control(t, PIPE) }, i);
}

function ctCheck(a: CtAction): void {
  if (a.nat && a.nat.type !== 'restore' && !a.commit) bad('ct: src or dst is only valid if commit is set', 'nat');
  if (a.nat && a.nat.type === 'restore' && a.commit) bad('ct: commit and nat must set src or dst', 'nat');
}

function parsePolice(t: Tokens): Action {
  const a: PoliceAction = { kind: 'police', control: PASS, exceed: { kind: 'reclassify' } };
  let idx: number | undefined;
  for (;;) {
    const w = t.peek();
    if (w === 'rate') a.rate = rate((t.take(), t.next(w)), 'rate');
    else if (w === 'burst' || w === 'buffer' || w === 'maxburst') a.burst = size((t.take(), t.next(w)), 'burst');
    else if (w === 'mtu' || w === 'minburst') a.mtu = size((t.take(), t.next(w)), 'mtu');
    else if (w === 'peakrate') a.peakrate = rate((t.take(), t.next(w)), 'peakrate');
    else if (w === 'avrate') a.avrate = rate((t.take(), t.next(w)), 'avrate');
    else if (w === 'pkts_rate') a.pktsPerSec = uint((t.take(), t.next(w)), 'pkts_rate');
    else if (w === 'pkts_burst') a.pktBurst = uint((t.take(), t.next(w)), 'pkts_burst');
    else if (w === 'index') idx = uint((t.take(), t.next(w)), 'index');
    else if (w === 'conform-exceed') {
      t.take();
      const [ex, co] = t.next('conform-exceed').split('/');
      // m_police.c parse_action_control_slash: two plain verdicts; goto/jump need words of their own, which the slash form has not.
      for (const c of [ex, co]) if (c === 'goto' || c === 'jump') bad(`police conform-exceed: "${c}" cannot be used in the slash form`, 'conform-exceed');
      a.exceed = parseControlWord(t, ex!);
      if (co !== undefined) a.control = parseControlWord(t, co);
    } else if (w === 'overhead' || w === 'linklayer') throw new VpfError(Errno.EOPNOTSUPP, `police ${w} is not supported by vpf`, w);
    else break;
  }
  // m_police.c: a police naming an index (a shared one: OVS's meters) or an mtu needs no rate.
  if (!a.rate && !a.pktsPerSec && !a.avrate && !idx && !a.mtu) bad('police: "rate", "avrate", "mtu" or "pkts_rate" is required', 'police');
  if (a.rate && a.burst === undefined) bad('police: "burst" is required with "rate"', 'police');
  if (a.rate && a.burst !== undefined) a.burst = ticksToBurst(burstToTicks(a.burst, a.rate), a.rate);
  if (a.pktsPerSec && a.pktBurst !== undefined) a.pktBurst = ticksToBurst(burstToTicks(a.pktBurst, a.pktsPerSec), a.pktsPerSec);
  if (a.pktsPerSec && a.pktBurst === undefined) bad('police: "pkts_burst" is required with "pkts_rate"', 'police');
  // A trailing bare control is the conform verdict in iproute2 ("police ... drop" sets exceed; keep tc's meaning).
  const w = t.peek();
  if (w && CONTROL_WORDS.includes(w)) {
    t.take();
    a.exceed = parseControlWord(t, w);
  }
  return withIndex(a, idx);
}

/** tc_util.c get_tc_classid: root, none, MAJ:MIN or one hex number (no 0x needed). */
function tcClassid(s: string, what: string): number {
  if (s === 'root') return 0xffffffff;
  if (s === 'none') return 0;
  const m = /^([0-9a-f]*):([0-9a-f]+)$/i.exec(s);
  if (m) {
    const maj = m[1] ? parseInt(m[1], 16) : 0, min = parseInt(m[2]!, 16);
    if (maj > 0xffff || min > 0xffff) bad(`Illegal "${what}": '${s}'`, what);
    return ((maj << 16) | min) >>> 0;
  }
  return uint(s, what, 0xffffffff, 16);
}

const printClassid = (p: number) => `${(p >>> 16).toString(16)}:${(p & 0xffff).toString(16)}`;

const PTYPES: Record<string, number> = { host: 0, broadcast: 1, multicast: 2, otherhost: 3 };

function parseSkbedit(t: Tokens): Action {
  const a: SkbeditAction = { kind: 'skbedit', control: PIPE };
  for (;;) {
    const w = t.peek();
    if (w === 'queue_mapping') a.queueMapping = uint((t.take(), t.next(w)), 'queue_mapping', 0xffff, 10);
    else if (w === 'priority') {
      t.take();
      a.priority = tcClassid(t.next('priority'), 'priority');
    } else if (w === 'mark') {
      t.take();
      const [v, m] = t.next('mark').split('/');
      a.mark = { value: uint(v!, 'mark'), mask: m === undefined ? 0xffffffff : uint(m, 'mark mask') };
    } else if (w === 'ptype') {
      t.take();
      const p = PTYPES[t.next('ptype')];
      if (p === undefined) bad('skbedit: ptype is host, otherhost, broadcast or multicast', 'ptype');
      a.ptype = p;
    } else if (w === 'inheritdsfield') throw new VpfError(Errno.EOPNOTSUPP, 'skbedit inheritdsfield is not supported by vpf', w);
    else break;
  }
  if (a.mark === undefined && a.priority === undefined && a.ptype === undefined && a.queueMapping === undefined) bad('skbedit: nothing to edit', 'skbedit');
  const i = index(t);
  return withIndex({ ...a, control: control(t, PIPE) }, i);
}

function parseSample(t: Tokens): Action {
  let r: number | undefined, g: number | undefined, trunc: number | undefined;
  for (;;) {
    if (t.accept('rate')) r = uint(t.next('rate'), 'sample rate', 0xffffffff, 10);
    else if (t.accept('group')) g = uint(t.next('group'), 'sample group', 0xffffffff, 10);
    else if (t.accept('trunc')) trunc = uint(t.next('trunc'), 'sample trunc', 0xffffffff, 10);
    else break;
  }
  if (!r) return bad('sample: "rate" (non-zero) is required', 'sample');
  if (g === undefined) return bad('sample: "group" is required', 'sample');
  const i = index(t);
  return withIndex({ kind: 'sample', rate: r, group: g, ...(trunc !== undefined ? { trunc } : {}), control: control(t, PIPE) }, i);
}

function parseMpls(t: Tokens): Action {
  const op = t.next('mpls');
  const f: { label?: number; tc?: number; ttl?: number; bos?: number; protocol?: number } = {};
  for (;;) {
    if (t.accept('label')) f.label = uint(t.next('label'), 'mpls label', 0xfffff);
    else if (t.accept('tc')) f.tc = uint(t.next('tc'), 'mpls tc', 7);
    else if (t.accept('ttl')) f.ttl = uint(t.next('ttl'), 'mpls ttl', 0xff);
    else if (t.accept('bos')) f.bos = uint(t.next('bos'), 'mpls bos', 1);
    else if (t.accept('protocol')) f.protocol = ethProto(t.next('protocol'), 'mpls protocol');
    else break;
  }
  let a: MplsAction;
  const { protocol, ...rest } = f;
  if (op === 'pop') {
    if (protocol === undefined) return bad('mpls pop: "protocol" is required', 'mpls');
    a = { kind: 'mpls', op: 'pop', protocol, control: PIPE };
  } else if (op === 'push' || op === 'mac_push') {
    if (rest.label === undefined) return bad(`mpls ${op}: "label" is required`, 'mpls');
    // m_mpls.c: "invalid push protocol ... - use mpls_(uc|mc)".
    if (protocol !== undefined && protocol !== 0x8847 && protocol !== 0x8848) return bad(`mpls ${op}: protocol must be mpls_uc or mpls_mc`, 'mpls');
    a = { kind: 'mpls', op, protocol: protocol ?? 0x8847, ...rest, control: PIPE };
  } else if (op === 'modify') a = { kind: 'mpls', op: 'modify', ...rest, control: PIPE };
  else if (op === 'dec_ttl') a = { kind: 'mpls', op: 'dec_ttl', control: PIPE };
  else return bad(`mpls: expected push, pop, modify or dec_ttl, got "${op}"`, 'mpls');
  const i = index(t);
  return withIndex({ ...a, control: control(t, PIPE) }, i);
}

/** Parses one action after the `action`/`actions` keyword. */
export function parseAction(t: Tokens): Action {
  const kind = t.next('action');
  if (CONTROL_WORDS.includes(kind)) {
    const c = parseControlWord(t, kind);
    const i = index(t);
    return withIndex({ kind: 'gact', control: c }, i);
  }
  switch (kind) {
    case 'gact': {
      const w = t.next('gact');
      if (w === 'random') throw new VpfError(Errno.EOPNOTSUPP, 'gact random cannot be offloaded', 'random');
      const c = parseControlWord(t, w);
      return withIndex({ kind: 'gact', control: c }, index(t));
    }
    case 'mirred':
      return parseMirred(t);
    case 'vlan':
      return parseVlan(t);
    case 'pedit':
      return parsePedit(t);
    case 'csum':
      return parseCsum(t);
    case 'tunnel_key':
      return parseTunnelKey(t);
    case 'ct':
      return parseCt(t);
    case 'police':
      return parsePolice(t);
    case 'skbedit':
      return parseSkbedit(t);
    case 'sample':
      return parseSample(t);
    case 'mpls':
      return parseMpls(t);
  }
  throw new VpfError(Errno.EOPNOTSUPP, `action "${kind}" is not supported by vpf`, kind);
}

const idx = (a: Action) => (a.index ? ['index', String(a.index)] : []);
const ctl = (a: Action, dflt: Control) => (sameControl(a.control, dflt) ? [] : printControl(a.control));

/** One action in canonical tc syntax, without the leading `action`. */
export function printAction(a: Action): string[] {
  switch (a.kind) {
    case 'gact':
      return [...printControl(a.control), ...idx(a)];
    case 'mirred':
      if (a.op === 'redirect' && a.control.kind !== 'stolen') throw new VpfError(Errno.EINVAL, `mirred redirect with verdict ${a.control.kind} has no tc syntax`);
      return ['mirred', a.direction, a.op, 'dev', a.dev, ...idx(a), ...ctl(a, a.op === 'redirect' ? { kind: 'stolen' } : PIPE)];
    case 'vlan': {
      const body = a.op === 'pop' ? ['pop'] : [a.op, ...(a.protocol !== undefined ? ['protocol', ethProtoName(a.protocol)] : []), 'id', String(a.id), ...(a.prio !== undefined ? ['priority', String(a.prio)] : [])];
      return ['vlan', ...body, ...idx(a), ...ctl(a, PIPE)];
    }
    case 'pedit': {
      const m = printMunge(a.keys);
      if (!m) throw new VpfError(Errno.EOPNOTSUPP, 'pedit keys that are not whole named fields have no tc syntax', 'pedit');
      return ['pedit', 'ex', ...m, ...idx(a), ...ctl(a, PASS)];
    }
    case 'csum':
      return ['csum', ...CSUM_FLAGS.filter(([, b]) => a.flags & b).map(([n]) => n[n.length - 1]!), ...idx(a), ...ctl(a, PASS)];
    case 'tunnel_key': {
      if (a.op === 'unset') return ['tunnel_key', 'unset', ...idx(a), ...ctl(a, PIPE)];
      if (!a.srcIp || !a.dstIp) throw new VpfError(Errno.EOPNOTSUPP, 'tunnel_key set without both addresses has no tc syntax', 'tunnel_key');
      const o = ['tunnel_key', 'set'];
      if (a.srcIp) o.push('src_ip', a.srcIp);
      if (a.dstIp) o.push('dst_ip', a.dstIp);
      if (a.id !== undefined) o.push('id', String(a.id));
      if (a.dstPort !== undefined) o.push('dst_port', String(a.dstPort));
      if (a.tos !== undefined) o.push('tos', String(a.tos));
      if (a.ttl !== undefined) o.push('ttl', String(a.ttl));
      if (a.noCsum) o.push('nocsum');
      else if (a.noCsum === undefined) throw new VpfError(Errno.EINVAL, 'tunnel_key set without a checksum setting has no tc syntax (iproute2 always sends one)');
      if (a.noFrag) o.push('nofrag');
      if (a.geneveOpts) o.push('geneve_opts', a.geneveOpts.map((g) => `${g.class.toString(16).padStart(4, '0')}:${g.type.toString(16).padStart(2, '0')}:${g.data}`).join(','));
      return [...o, ...idx(a), ...ctl(a, PIPE)];
    }
    case 'ct': {
      if (a.clear) return ['ct', 'clear', ...idx(a), ...ctl(a, PIPE)];
      try {
        ctCheck(a);
      } catch (e) {
        throw new VpfError(Errno.EOPNOTSUPP, `${(e as Error).message}: no tc syntax says this ct action`, 'ct');
      }
      if (a.nat && a.nat.type !== 'restore' && !a.nat.addrMin) throw new VpfError(Errno.EOPNOTSUPP, 'ct nat without an address has no tc syntax', 'ct');
      const o = ['ct'];
      if (a.commit) o.push('commit');
      if (a.force) o.push('force');
      if (a.zone !== undefined) o.push('zone', String(a.zone));
      if (a.mark) o.push('mark', a.mark.mask === 0xffffffff ? String(a.mark.value) : `${a.mark.value}/0x${a.mark.mask.toString(16)}`);
      if (a.label) o.push('label', a.label.mask === 'f'.repeat(32) ? a.label.value : `${a.label.value}/${a.label.mask}`);
      if (a.nat) {
        o.push('nat');
        if (a.nat.type !== 'restore') {
          o.push(a.nat.type);
          if (a.nat.addrMin) o.push('addr', a.nat.addrMax && a.nat.addrMax !== a.nat.addrMin ? `${a.nat.addrMin}-${a.nat.addrMax}` : a.nat.addrMin);
          if (a.nat.portMin !== undefined) o.push('port', a.nat.portMax !== undefined && a.nat.portMax !== a.nat.portMin ? `${a.nat.portMin}-${a.nat.portMax}` : String(a.nat.portMin));
        }
      }
      return [...o, ...idx(a), ...ctl(a, PIPE)];
    }
    case 'police': {
      const o = ['police'];
      // m_police.c wants a nonzero burst with a rate: a zero one (possible over netlink) has no tc syntax.
      if (a.rate && !a.burst) throw new VpfError(Errno.EOPNOTSUPP, 'police with a rate and burst 0 has no tc syntax', 'police');
      if (a.rate) o.push('rate', printRate(a.rate), 'burst', String(a.burst));
      if (a.mtu) o.push('mtu', String(a.mtu));
      if (a.peakrate) o.push('peakrate', printRate(a.peakrate));
      if (a.avrate) o.push('avrate', printRate(a.avrate));
      if (a.pktsPerSec) o.push('pkts_rate', String(a.pktsPerSec), 'pkts_burst', String(a.pktBurst ?? 0));
      if (a.exceed.kind === 'goto' || a.exceed.kind === 'jump' || a.control.kind === 'goto' || a.control.kind === 'jump') {
        throw new VpfError(Errno.EINVAL, 'police with a goto/jump verdict has no conform-exceed syntax here');
      }
      o.push('conform-exceed', `${a.exceed.kind}/${a.control.kind}`);
      return [...o, ...idx(a)];
    }
    case 'skbedit': {
      const o = ['skbedit'];
      if (a.queueMapping !== undefined) o.push('queue_mapping', String(a.queueMapping));
      if (a.priority !== undefined) o.push('priority', printClassid(a.priority));
      if (a.mark) o.push('mark', a.mark.mask === 0xffffffff ? String(a.mark.value) : `${a.mark.value}/0x${a.mark.mask.toString(16)}`);
      if (a.ptype !== undefined) o.push('ptype', Object.entries(PTYPES).find(([, v]) => v === a.ptype)?.[0] ?? String(a.ptype));
      return [...o, ...idx(a), ...ctl(a, PIPE)];
    }
    case 'sample':
      return ['sample', 'rate', String(a.rate), 'group', String(a.group), ...(a.trunc !== undefined ? ['trunc', String(a.trunc)] : []), ...idx(a), ...ctl(a, PIPE)];
    case 'mpls': {
      const o = ['mpls', a.op];
      if (a.op === 'pop' || a.op === 'push' || a.op === 'mac_push') o.push('protocol', ethProtoName(a.protocol));
      if (a.op === 'push' || a.op === 'mac_push' || a.op === 'modify') {
        if (a.label !== undefined) o.push('label', String(a.label));
        if (a.tc !== undefined) o.push('tc', String(a.tc));
        // m_mpls.c: "ttl must be >0 and <=255"; ttl 0 exists only over netlink.
        if (a.ttl === 0) throw new VpfError(Errno.EOPNOTSUPP, 'mpls ttl 0 has no tc syntax', 'mpls');
        if (a.ttl !== undefined) o.push('ttl', String(a.ttl));
        if (a.bos !== undefined) o.push('bos', String(a.bos));
      }
      return [...o, ...idx(a), ...ctl(a, PIPE)];
    }
  }
}
