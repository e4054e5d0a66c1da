// OpenFlow 1.5 instructions from ovs-ofctl action text (ovs-actions(7)): the
// actions our translators emit, encoded the way ovs-ofctl encodes them for
// OF1.5 (lib/ofp-actions.c encode_*: mod_dl_*/mod_nw_src/dst become Set-Field,
// masked set_field stays OFPAT_SET_FIELD with an OXM mask since NXAST_REG_LOAD2
// is NX1.0-1.4 only, meter is the OF1.5 OFPAT_METER action, goto_table the
// only instruction after Apply-Actions). Anything else throws UnsupportedFlow.
import { ipv4ToBytes, ipv6ToBytes } from '../../rules/addr.js';
import { fieldByName, oxmEntry, parseFieldValue, unsupported } from './oxm.js';

const NX_VENDOR_ID = 0x00002320;
const OFPAT = { OUTPUT: 0, SET_QUEUE: 21, SET_NW_TTL: 23, DEC_NW_TTL: 24, PUSH_VLAN: 17, POP_VLAN: 18, PUSH_MPLS: 19, POP_MPLS: 20, SET_FIELD: 25, METER: 29, EXPERIMENTER: 0xffff } as const;
const NXAST = { RESUBMIT: 1, RESUBMIT_TABLE: 14, SAMPLE: 29, CT: 35, NAT: 36, CLONE: 42, CT_CLEAR: 43 } as const;
const OFPIT = { GOTO_TABLE: 1, APPLY_ACTIONS: 4 } as const;
/** OpenFlow 1.1+ reserved port numbers (openflow-1.1.h ofp11_port_no). */
const OFPP11_IN_PORT = 0xfffffff8;
/** OpenFlow 1.0 port numbers above this are reserved (OFPP_MAX); resubmit carries 16-bit ports. */
const OFPP_MAX = 0xff00;
const OFPP_IN_PORT16 = 0xfff8;

const pad8 = (b: Buffer): Buffer => (b.length % 8 ? Buffer.concat([b, Buffer.alloc(8 - (b.length % 8))]) : b);

/** A standard action: type, len, body, padded to 8 bytes. */
function ofpat(type: number, body: Buffer): Buffer {
  const out = pad8(Buffer.concat([Buffer.alloc(4), body]));
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(out.length, 2);
  return out;
}

/** A Nicira extension action: OFPAT_EXPERIMENTER, NX_VENDOR_ID, subtype, body, padded to 8. */
function nxast(subtype: number, body: Buffer): Buffer {
  const head = Buffer.alloc(10);
  head.writeUInt16BE(OFPAT.EXPERIMENTER, 0);
  head.writeUInt32BE(NX_VENDOR_ID, 4);
  head.writeUInt16BE(subtype, 8);
  const out = pad8(Buffer.concat([head, body]));
  out.writeUInt16BE(out.length, 2);
  return out;
}

const u8 = (n: number) => Buffer.from([n]);
const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

function num(text: string | undefined, max: number, what: string): number {
  if (text === undefined || !/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(text)) return unsupported(`${what} argument syntax`, `${what}: cannot encode argument '${text ?? ''}'`);
  const n = Number(text);
  if (n > max) return unsupported(`${what} argument range`, `${what}: ${text} out of range`);
  return n;
}

/** An OpenFlow port as ovs-ofctl accepts it numerically; named ports are left to ovs-ofctl. */
function port(text: string | undefined, what: string): number {
  const p = num(text, 0xffffffff, what);
  if (p >= OFPP_MAX) return unsupported(`${what} reserved port`, `${what}: port ${text} is not encoded natively`);
  return p;
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

function setField(valueText: string, fieldName: string): Buffer {
  const spec = fieldByName(fieldName);
  if (!spec) return unsupported(`set_field ->${fieldName}`, `set_field: field '${fieldName}' is not encoded natively`);
  if (!spec.writable) return unsupported(`set_field ->${fieldName} read-only`, `set_field: ${fieldName} is read-only`);
  if (spec.kind === 'frag' || spec.kind === 'ct_state') return unsupported(`set_field ->${fieldName}`, `set_field: ${fieldName} is not encoded natively`);
  // set_field_parse__: the value is not masked, and the mask goes out only if it is not all-ones.
  const { value, mask } = parseFieldValue(spec, valueText);
  if (spec.name === 'vlan_vid' && !(value.readUInt16BE(0) & 0x1000)) return unsupported('set_field vlan_vid without OFPVID_PRESENT', 'set_field: vlan_vid needs the 0x1000 present bit in OF1.5');
  return ofpat(OFPAT.SET_FIELD, oxmEntry(spec, value, mask));
}

function resubmit(arg: string | undefined, paren: boolean): Buffer {
  if (!paren || arg === undefined) return unsupported('resubmit without (port,table)', 'resubmit: only resubmit([port],table) is encoded natively');
  const parts = arg.split(',');
  if (parts.length !== 2) return unsupported('resubmit arguments', `resubmit(${arg}): only (port,table) is encoded natively`);
  const inPort = parts[0] === '' ? OFPP_IN_PORT16 : port(parts[0], 'resubmit');
  if (parts[1] === '') return unsupported('resubmit to the same table', 'resubmit(port,): NXAST_RESUBMIT form is not encoded natively');
  const table = num(parts[1], 254, 'resubmit table');
  return nxast(NXAST.RESUBMIT_TABLE, Buffer.concat([u16(inPort), u8(table), Buffer.alloc(3)]));
}

/** nat(...) inside ct(): NXAST_NAT with the ranges OVS puts only when non-zero (encode_NAT). */
function nat(arg: string | undefined): Buffer {
  let flags = 0;
  const ranges: Buffer[] = [];
  let present = 0;
  for (const item of arg ? arg.split(',') : []) {
    const [key, value] = item.split(/=(.*)/s) as [string, string | undefined];
    if (key === 'src' || key === 'dst') {
      flags |= key === 'src' ? 1 : 2;
      if (value) {
        const r = natRange(value);
        present = r.present;
        ranges.push(r.bytes);
      }
    } else if (key === 'persistent') flags |= 4;
    else if (key === 'hash') flags |= 8;
    else if (key === 'random') flags |= 16;
    else return unsupported(`nat ${key}`, `nat: '${key}' is not encoded natively`);
  }
  if ((flags & 3) === 3 || (!(flags & 3) && (flags || present)) || (flags & 24) === 24) return unsupported('nat flag combination', `nat(${arg}): invalid flag combination`);
  return nxast(NXAST.NAT, Buffer.concat([Buffer.alloc(2), u16(flags), u16(present), ...ranges]));
}

function natRange(text: string): { present: number; bytes: Buffer } {
  const parts: Buffer[] = [];
  let present = 0;
  const v4 = /^(\d+\.\d+\.\d+\.\d+)(?:-(\d+\.\d+\.\d+\.\d+))?(?::(\d+)(?:-(\d+))?)?$/.exec(text);
  const v6 = v4 ? null : /^([0-9a-fA-F:.]+)(?:-([0-9a-fA-F:.]+))?$/.exec(text) ?? /^\[([0-9a-fA-F:.]+)\](?:-\[([0-9a-fA-F:.]+)\])?(?::(\d+)(?:-(\d+))?)?$/.exec(text);
  const m = v4 ?? v6;
  if (!m) return unsupported('nat range syntax', `nat: cannot encode range '${text}'`);
  const parse = v4 ? ipv4ToBytes : ipv6ToBytes;
  let min: Buffer, max: Buffer | undefined;
  try {
    min = Buffer.from(parse(m[1]!));
    max = m[2] ? Buffer.from(parse(m[2])) : undefined;
  } catch {
    return unsupported('nat range syntax', `nat: cannot encode range '${text}'`);
  }
  if (max && Buffer.compare(max, min) < 0) return unsupported('nat range order', `nat: range '${text}' ends below its start`);
  const [minBit, maxBit] = v4 ? [1, 2] : [4, 8];
  if (min.some((x) => x)) {
    parts.push(min);
    present |= minBit;
  }
  if (max && max.some((x) => x)) {
    parts.push(max);
    present |= maxBit;
  }
  const pmin = m[3] === undefined ? 0 : num(m[3], 0xffff, 'nat port');
  const pmax = m[4] === undefined ? 0 : num(m[4], 0xffff, 'nat port');
  if (m[4] !== undefined && pmax < pmin) return unsupported('nat range order', `nat: port range '${text}' ends below its start`);
  if (pmin) {
    parts.push(u16(pmin));
    present |= 16;
  }
  if (pmax) {
    parts.push(u16(pmax));
    present |= 32;
  }
  return { present, bytes: Buffer.concat(parts) };
}

/** ct(...): NXAST_CT with an immediate zone; nat and exec actions nest in the order written (parse_CT). */
function ct(arg: string | undefined): Buffer {
  let flags = 0, zone = 0, table = 0xff;
  const nested: Buffer[] = [];
  for (const item of arg ? splitTop(arg) : []) {
    const { name, arg: v } = splitAction(item);
    if (name === 'commit' && v === undefined) flags |= 1;
    else if (name === 'force' && v === undefined) flags |= 2;
    else if (name === 'zone') zone = num(v, 0xffff, 'ct zone');
    else if (name === 'table') table = num(v, 254, 'ct table');
    else if (name === 'nat') nested.push(nat(v));
    else if (name === 'exec') nested.push(...(v ? splitTop(v).map((a) => action(a)) : []));
    else return unsupported(`ct ${name}`, `ct: '${name}' is not encoded natively`);
  }
  if (flags & 2 && !(flags & 1)) return unsupported('ct force without commit', 'ct: "force" flag requires "commit" flag');
  // flags, zone_src (0: immediate), zone_imm, recirc_table, pad[3], alg.
  const body = Buffer.concat([u16(flags), u32(0), u16(zone), u8(table), Buffer.alloc(3), u16(0)]);
  const head = nxast(NXAST.CT, body);
  const out = Buffer.concat([head, ...nested]);
  out.writeUInt16BE(out.length, 2);
  return out;
}

function sample(arg: string | undefined): Buffer {
  const v: Record<string, number> = { probability: -1, collector_set_id: 0, obs_domain_id: 0, obs_point_id: 0 };
  for (const item of arg ? arg.split(',') : []) {
    const [key, value] = item.split('=') as [string, string | undefined];
    if (!(key in v)) return unsupported(`sample ${key}`, `sample: '${key}' is not encoded natively`);
    v[key] = num(value, key === 'probability' ? 0xffff : 0xffffffff, `sample ${key}`);
  }
  if (v.probability! <= 0) return unsupported('sample without probability', 'sample: probability must be 1..65535');
  return nxast(NXAST.SAMPLE, Buffer.concat([u16(v.probability!), u32(v.collector_set_id!), u32(v.obs_domain_id!), u32(v.obs_point_id!)]));
}

const ethertype = (arg: string | undefined, what: string) => num(arg, 0xffff, what);

/** One action (not an instruction) as OF1.5 wire bytes. */
export function action(item: string): Buffer {
  const { name, arg } = splitAction(item);
  const paren = item.endsWith(')') && item.includes('(');
  switch (name) {
    case 'output':
      return ofpat(OFPAT.OUTPUT, Buffer.concat([u32(port(arg, 'output')), u16(0), Buffer.alloc(6)]));
    case 'in_port':
      if (arg !== undefined) break;
      return ofpat(OFPAT.OUTPUT, Buffer.concat([u32(OFPP11_IN_PORT), u16(0), Buffer.alloc(6)]));
    case 'resubmit':
      return resubmit(arg, paren);
    case 'push_vlan':
      return ofpat(OFPAT.PUSH_VLAN, Buffer.concat([u16(ethertype(arg, 'push_vlan')), Buffer.alloc(2)]));
    case 'pop_vlan':
    case 'strip_vlan':
      if (arg !== undefined) break;
      return ofpat(OFPAT.POP_VLAN, Buffer.alloc(4));
    case 'push_mpls':
      return ofpat(OFPAT.PUSH_MPLS, Buffer.concat([u16(ethertype(arg, 'push_mpls')), Buffer.alloc(2)]));
    case 'pop_mpls':
      return ofpat(OFPAT.POP_MPLS, Buffer.concat([u16(ethertype(arg, 'pop_mpls')), Buffer.alloc(2)]));
    case 'set_field': {
      const at = arg?.lastIndexOf('->') ?? -1;
      if (at < 0) break;
      return setField(arg!.slice(0, at), arg!.slice(at + 2));
    }
    case 'mod_dl_src':
    case 'mod_dl_dst':
      if (arg === undefined || arg.includes('/')) break;
      return setField(arg, name === 'mod_dl_src' ? 'eth_src' : 'eth_dst');
    case 'mod_nw_src':
    case 'mod_nw_dst':
      if (arg === undefined || arg.includes('/')) break;
      return setField(arg, name === 'mod_nw_src' ? 'ip_src' : 'ip_dst');
    case 'mod_nw_ttl':
      return ofpat(OFPAT.SET_NW_TTL, Buffer.concat([u8(num(arg, 0xff, 'mod_nw_ttl')), Buffer.alloc(3)]));
    case 'dec_ttl':
      // dec_ttl with no controller ids is OFPAT_DEC_NW_TTL (encode_DEC_TTL).
      if (arg !== undefined) break;
      return ofpat(OFPAT.DEC_NW_TTL, Buffer.alloc(4));
    case 'ct':
      return ct(arg);
    case 'ct_clear':
      if (arg !== undefined) break;
      return nxast(NXAST.CT_CLEAR, Buffer.alloc(6));
    case 'clone': {
      const nested = arg ? splitTop(arg).map((a) => action(a)) : [];
      const out = Buffer.concat([nxast(NXAST.CLONE, Buffer.alloc(6)), ...nested]);
      out.writeUInt16BE(out.length, 2);
      return out;
    }
    case 'meter':
      return ofpat(OFPAT.METER, u32(num(arg, 0xffffffff, 'meter')));
    case 'set_queue':
      return ofpat(OFPAT.SET_QUEUE, u32(num(arg, 0xffffffff, 'set_queue')));
    case 'sample':
      return sample(arg);
  }
  return unsupported(`action ${name}${arg === undefined ? '' : ' with this argument'}`, `actions: '${item}' is not encoded natively`);
}

/** The OF1.5 instruction list for an ovs-ofctl action string: Apply-Actions, then Goto-Table if last. */
export function encodeInstructions(text: string): Buffer {
  const items = splitTop(text);
  if (items.length === 1 && items[0] === 'drop') return Buffer.alloc(0);
  const acts: Buffer[] = [];
  let gotoTable: number | undefined;
  for (const item of items) {
    if (gotoTable !== undefined) return unsupported('goto_table not last', 'actions: goto_table must be the last action');
    const { name, arg } = splitAction(item);
    if (name === 'goto_table') gotoTable = num(arg, 254, 'goto_table');
    else if (name === 'drop') return unsupported('drop with other actions', "actions: 'drop' cannot be combined with other actions");
    else acts.push(action(item));
  }
  const out: Buffer[] = [];
  if (acts.length) {
    const head = Buffer.alloc(8);
    const body = Buffer.concat(acts);
    head.writeUInt16BE(OFPIT.APPLY_ACTIONS, 0);
    head.writeUInt16BE(8 + body.length, 2);
    out.push(head, body);
  }
  if (gotoTable !== undefined) {
    const g = Buffer.alloc(8);
    g.writeUInt16BE(OFPIT.GOTO_TABLE, 0);
    g.writeUInt16BE(8, 2);
    g[4] = gotoTable;
    out.push(g);
  }
  return Buffer.concat(out);
}
