// ovs-ofctl flow text (ovs-fields(7), ovs-actions(7)) back into flow values,
// for tests and tools that hold a line (hand-written forms, a pasted flow).
// Never on the install path: the translators build values, encode.ts encodes
// them. The vocabulary is the encoder's; anything else throws UnsupportedFlow.
import { ipv4ToBytes, ipv6ToBytes, macToBytes } from '../../rules/addr.js';
import { CT_STATE_BITS, FRAG_NAMES, LOAD_NAME, type FieldName, type FieldValue, type Match, type MatchField, type OfAction, type OfFlow, type OfNat } from './flow.js';
import { fieldByName, fieldByNxm, moveSubfields, unsupported, type FieldSpec } from './oxm.js';

const intRe = /^(0x[0-9a-fA-F]+|[0-9]+)$/;

function int(text: string | undefined, max: number, what: string): number {
  if (text === undefined || !intRe.test(text)) return unsupported(`${what} value syntax`, `${what}: cannot parse '${text ?? ''}'`);
  const n = Number(text);
  if (n > max) return unsupported(`${what} value range`, `${what}: ${text} out of range`);
  return n;
}

const bytesNum = (b: Uint8Array): number => b.reduce((a, x) => a * 256 + x, 0);

function addr(parse: (s: string) => Uint8Array, s: string, what: string): Uint8Array {
  try {
    return parse(s);
  } catch {
    return unsupported(`${what} value syntax`, `${what}: cannot parse address '${s}'`);
  }
}

function prefix(len: string, bytes: number, what: string): Uint8Array {
  if (!/^[0-9]+$/.test(len) || Number(len) > bytes * 8) return unsupported(`${what} mask syntax`, `${what}: bad prefix /${len}`);
  const b = new Uint8Array(bytes);
  for (let i = 0; i < Number(len); i++) b[i >> 3]! |= 0x80 >> (i & 7);
  return b;
}

/** A 128-bit hex integer (ct_label) as 16 bytes. */
function u128(text: string, what: string): Uint8Array {
  if (!intRe.test(text)) return unsupported(`${what} value syntax`, `${what}: cannot parse '${text}'`);
  let v = BigInt(text);
  if (v >> 128n) return unsupported(`${what} value range`, `${what}: ${text} too large`);
  const out = new Uint8Array(16);
  for (let i = 15; i >= 0; i--, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

/** A field value (and mask) as mf_parse reads it for the field's kind. */
function fieldValue(spec: FieldSpec, text: string): { value: FieldValue; mask?: FieldValue } {
  const what = spec.name;
  const slash = text.indexOf('/');
  const v = slash < 0 ? text : text.slice(0, slash);
  const m = slash < 0 ? undefined : text.slice(slash + 1);
  // ovs-ofctl refuses a value above the field's significant bits (mf_is_value_valid); masks may be wider.
  const max = 2 ** Math.min(spec.bits, 48) - 1, maskMax = 2 ** (8 * Math.min(spec.bytes, 6)) - 1;
  switch (spec.kind) {
    case 'int':
    case 'port':
      if (spec.bytes > 6) return { value: u128(v, what), ...(m === undefined ? {} : { mask: u128(m, what) }) };
      return { value: int(v, max, what), ...(m === undefined ? {} : { mask: int(m, maskMax, what) }) };
    case 'mac':
      return { value: bytesNum(addr(macToBytes, v, what)), ...(m === undefined ? {} : { mask: bytesNum(addr(macToBytes, m, what)) }) };
    case 'ipv4':
      return { value: bytesNum(addr(ipv4ToBytes, v, what)), ...(m === undefined ? {} : { mask: bytesNum(m.includes('.') ? addr(ipv4ToBytes, m, what) : prefix(m, 4, what)) }) };
    case 'ipv6':
      return { value: addr(ipv6ToBytes, v, what), ...(m === undefined ? {} : { mask: m.includes(':') ? addr(ipv6ToBytes, m, what) : prefix(m, 16, what) }) };
    case 'frag': {
      const f = FRAG_NAMES.find(([name]) => name === text);
      if (!f) return unsupported(`${what} value syntax`, `${what}: unknown fragment type '${text}'`);
      return { value: f[1], mask: f[2] };
    }
    case 'ct_state': {
      // mf_from_ct_state_string: "+trk-est" flag lists.
      if (!/^([+-][a-z]+)+$/.test(text)) return unsupported(`${what} value syntax`, `${what}: cannot parse '${text}'`);
      let value = 0, mask = 0;
      for (const [, sign, name] of text.matchAll(/([+-])([a-z]+)/g)) {
        const bit = CT_STATE_BITS.find(([n]) => n === name)?.[1];
        if (bit === undefined) return unsupported(`${what} value syntax`, `${what}: unknown flag '${name}'`);
        mask |= bit;
        if (sign === '+') value |= bit;
      }
      return { value, mask };
    }
  }
}

/** ovs-ofctl match text ("k=v,k=v"; no protocol shorthands) as a Match. */
export function parseMatch(text: string): Match {
  const out: MatchField[] = [];
  for (const part of text.split(',')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    if (eq < 0) return unsupported(`match '${part}'`, `match: '${part}' (protocol shorthands and flags are not parsed)`);
    const key = part.slice(0, eq), val = part.slice(eq + 1);
    if (key === 'vlan_tci') {
      const [v, m] = val.split('/');
      out.push({ field: 'vlan_tci', value: int(v, 0xffff, key), mask: m === undefined ? 0xffff : int(m, 0xffff, key) });
      continue;
    }
    if (key === 'dl_vlan') {
      out.push({ field: 'dl_vlan', value: int(val, 0xfff, key) });
      continue;
    }
    const spec = fieldByName(key);
    if (!spec) return unsupported(`match field ${key}`, `match: field '${key}' is not known`);
    out.push({ field: spec.name as FieldName, ...fieldValue(spec, val) });
  }
  return out;
}

/** Splits at top-level commas (parentheses nest: resubmit(,1), ct(exec(a,b))). */
export function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0, cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) unsupported('unbalanced parentheses', `actions: unbalanced parentheses in '${text}'`);
  out.push(cur);
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

/** `name`, `name:arg`, `name=arg` or `name(arg)` (lib/ofp-parse.c ofputil_parse_key_value). */
function splitAction(item: string): { name: string; arg: string | undefined } {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:[:=]([\s\S]*)|\(([\s\S]*)\))?$/.exec(item);
  if (!m) return unsupported(`action '${item}'`, `actions: cannot parse '${item}'`);
  return { name: m[1]!, arg: m[2] ?? m[3] };
}

function setField(valueText: string, fieldName: string, mod?: boolean): OfAction {
  const spec = fieldByName(fieldName);
  if (!spec) return unsupported(`set_field ->${fieldName}`, `set_field: field '${fieldName}' is not known`);
  return { a: 'set_field', field: spec.name as FieldName, ...fieldValue(spec, valueText), ...(mod ? { mod } : {}) };
}

function natRange(n: OfNat, text: string): void {
  const v4 = /^(\d+\.\d+\.\d+\.\d+)(?:-(\d+\.\d+\.\d+\.\d+))?(?::(\d+)(?:-(\d+))?)?$/.exec(text);
  const m = v4 ?? /^([0-9a-fA-F:.]+)(?:-([0-9a-fA-F:.]+))?$/.exec(text) ?? /^\[([0-9a-fA-F:.]+)\](?:-\[([0-9a-fA-F:.]+)\])?(?::(\d+)(?:-(\d+))?)?$/.exec(text);
  if (!m) return unsupported('nat range syntax', `nat: cannot parse range '${text}'`);
  const parse = v4 ? ipv4ToBytes : ipv6ToBytes;
  n.min = addr(parse, m[1]!, 'nat');
  if (m[2]) n.max = addr(parse, m[2], 'nat');
  if (m[3] !== undefined) n.portMin = int(m[3], 0xffff, 'nat port');
  if (m[4] !== undefined) n.portMax = int(m[4], 0xffff, 'nat port');
}

function nat(arg: string | undefined): OfNat {
  if (arg === undefined) return { type: 'restore' };
  let n: OfNat | undefined;
  const flags: Pick<OfNat, 'persistent' | 'hash' | 'random'> = {};
  for (const item of arg.split(',')) {
    const [key, value] = item.split(/=(.*)/s) as [string, string | undefined];
    if (key === 'src' || key === 'dst') {
      if (n) return unsupported('nat flag combination', `nat(${arg}): both src and dst`);
      n = { type: key };
      if (value) natRange(n, value);
    } else if (key === 'persistent' || key === 'hash' || key === 'random') flags[key] = true;
    else return unsupported(`nat ${key}`, `nat: '${key}' is not known`);
  }
  if (!n) return unsupported('nat flag combination', `nat(${arg}): flags without src or dst`);
  return { ...n, ...flags };
}

function ct(arg: string | undefined): OfAction {
  const x: OfAction & { a: 'ct' } = { a: 'ct', zone: 0 };
  for (const item of arg ? splitTop(arg) : []) {
    const { name, arg: v } = splitAction(item);
    if (name === 'commit' && v === undefined) x.commit = true;
    else if (name === 'force' && v === undefined) x.force = true;
    else if (name === 'zone') x.zone = int(v, 0xffff, 'ct zone');
    else if (name === 'table') x.table = int(v, 254, 'ct table');
    else if (name === 'nat') x.nat = nat(v);
    else if (name === 'exec') x.exec = v ? splitTop(v).map(parseAction) : [];
    else return unsupported(`ct ${name}`, `ct: '${name}' is not known`);
  }
  if (x.force && !x.commit) return unsupported('ct force without commit', 'ct: "force" flag requires "commit" flag');
  return x;
}

/** One side of a move: NAME, NAME[], NAME[i] or NAME[lo..hi] (meta-flow.c mf_parse_subfield__), NAME an NXM/OXM name as OVS prints it or a field name. */
function subfield(text: string, what: string): { spec: FieldSpec; ofs: number; bits: number } {
  const m = /^(\w+)(?:\[(?:(\d+)(?:\.\.(\d+))?)?\])?$/.exec(text);
  const spec = m ? fieldByNxm(m[1]!) ?? fieldByName(m[1]!) : undefined;
  if (!m || !spec) return unsupported(`move field ${m?.[1] ?? text}`, `${what}: field '${text}' is not known`);
  if (m[2] === undefined) return { spec, ofs: 0, bits: spec.bits };
  const lo = Number(m[2]), hi = Number(m[3] ?? m[2]);
  if (hi < lo || hi >= spec.bits) return unsupported('move bit range', `${what}: '${text}' is outside ${spec.name} (${spec.bits} bits)`);
  return { spec, ofs: lo, bits: hi - lo + 1 };
}

/** move:SRC->DST as the move value, in flow.ts's form: zero offsets and a whole-source `bits` left out. */
function move(arg: string | undefined): OfAction {
  const at = arg?.indexOf('->') ?? -1;
  if (at < 0) return unsupported('move syntax', `move: cannot parse '${arg ?? ''}'`);
  const what = `move:${arg}`;
  const src = subfield(arg!.slice(0, at), what), dst = subfield(arg!.slice(at + 2), what);
  // nxm_parse_reg_move: both sides must be the same width.
  if (src.bits !== dst.bits) return unsupported('move width', `${what}: source is ${src.bits} bits wide but destination is ${dst.bits} bits wide`);
  const x: OfAction & { a: 'move' } = { a: 'move', src: src.spec.name as FieldName, dst: dst.spec.name as FieldName };
  if (src.ofs) x.srcOfs = src.ofs;
  if (dst.ofs) x.dstOfs = dst.ofs;
  if (src.ofs || src.bits !== src.spec.bits) x.bits = src.bits;
  moveSubfields(x);
  return x;
}

function sample(arg: string | undefined): OfAction {
  const v: Record<string, number> = { probability: 0, collector_set_id: 0, obs_domain_id: 0, obs_point_id: 0 };
  for (const item of arg ? arg.split(',') : []) {
    const [key, value] = item.split('=') as [string, string | undefined];
    if (!(key in v)) return unsupported(`sample ${key}`, `sample: '${key}' is not known`);
    v[key] = int(value, key === 'probability' ? 0xffff : 0xffffffff, `sample ${key}`);
  }
  if (!v.probability) return unsupported('sample without probability', 'sample: probability must be 1..65535');
  return { a: 'sample', probability: v.probability, collectorSetId: v.collector_set_id!, obsDomainId: v.obs_domain_id!, obsPointId: v.obs_point_id! };
}

/** One action of ovs-ofctl text. */
export function parseAction(item: string): OfAction {
  const { name, arg } = splitAction(item);
  const paren = item.endsWith(')') && item.includes('(');
  switch (name) {
    case 'output':
      return { a: 'output', port: int(arg, 0xffffffff, 'output') };
    case 'in_port':
      if (arg === undefined) return { a: 'in_port' };
      break;
    case 'resubmit': {
      const parts = paren && arg !== undefined ? arg.split(',') : [];
      if (parts.length !== 2 || parts[1] === '') return unsupported('resubmit form', 'resubmit: only resubmit([port],table) is parsed');
      return { a: 'resubmit', table: int(parts[1], 254, 'resubmit table'), ...(parts[0] === '' ? {} : { port: int(parts[0], 0xffff, 'resubmit') }) };
    }
    case 'goto_table':
      return { a: 'goto_table', table: int(arg, 254, 'goto_table') };
    case 'push_vlan':
      return { a: 'push_vlan', tpid: int(arg, 0xffff, name) };
    case 'pop_vlan':
    case 'strip_vlan':
      if (arg === undefined) return { a: 'pop_vlan' };
      break;
    case 'push_mpls':
    case 'pop_mpls':
      return { a: name, ethertype: int(arg, 0xffff, name) };
    case 'set_field': {
      const at = arg?.lastIndexOf('->') ?? -1;
      if (at < 0) break;
      return setField(arg!.slice(0, at), arg!.slice(at + 2));
    }
    case 'load': {
      // load:V->NAME[lo..hi] on a LOAD_NAME field: the masked set_field ovs-ofctl makes of it.
      const m = arg?.match(/^(0x[0-9a-f]+|\d+)->(\w+)\[(\d+)(?:\.\.(\d+))?\]$/i);
      const field = m && (Object.keys(LOAD_NAME) as FieldName[]).find((k) => LOAD_NAME[k] === m[2]);
      if (!m || !field) break;
      const lo = Number(m[3]), hi = Number(m[4] ?? m[3]);
      const mask = (2 ** (hi + 1) - 1) - (2 ** lo - 1);
      return { a: 'set_field', field, value: (Number(m[1]) * 2 ** lo) & mask, mask };
    }
    case 'mod_dl_src':
    case 'mod_dl_dst':
    case 'mod_nw_src':
    case 'mod_nw_dst':
      if (arg === undefined || arg.includes('/')) break;
      return setField(arg, { mod_dl_src: 'eth_src', mod_dl_dst: 'eth_dst', mod_nw_src: 'ip_src', mod_nw_dst: 'ip_dst' }[name], true);
    case 'mod_nw_ttl':
      return { a: 'mod_nw_ttl', ttl: int(arg, 0xff, name) };
    case 'dec_ttl':
      if (arg === undefined) return { a: 'dec_ttl' };
      break;
    case 'ct':
      return ct(arg);
    case 'ct_clear':
      if (arg === undefined) return { a: 'ct_clear' };
      break;
    case 'clone':
      return { a: 'clone', actions: arg ? splitTop(arg).map(parseAction) : [] };
    case 'meter':
      return { a: 'meter', id: int(arg, 0xffffffff, name) };
    case 'set_queue':
      return { a: 'set_queue', queue: int(arg, 0xffffffff, name) };
    case 'sample':
      return sample(arg);
    case 'move':
      return move(arg);
  }
  return unsupported(`action ${name}${arg === undefined ? '' : ' with this argument'}`, `actions: '${item}' is not known`);
}

/** ovs-ofctl action text ("drop" = none) as actions. */
export function parseActions(text: string): OfAction[] {
  const items = splitTop(text);
  if (items.length === 1 && items[0] === 'drop') return [];
  if (items.includes('drop')) return unsupported('drop with other actions', "actions: 'drop' cannot be combined with other actions");
  return items.map(parseAction);
}

/** A flow from its match and action text. */
export const parseFlow = (table: number, priority: number, cookie: bigint, match: string, actions: string): OfFlow => ({ table, priority, cookie, match: parseMatch(match), actions: parseActions(actions) });
