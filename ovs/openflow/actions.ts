// OpenFlow 1.5 instructions from structured actions (flow.ts OfAction): the
// actions our translators emit, encoded the way ovs-ofctl encodes them for
// OF1.5 (lib/ofp-actions.c encode_*: mod_dl_*/mod_nw_src/dst become Set-Field,
// masked set_field stays OFPAT_SET_FIELD with an OXM mask since NXAST_REG_LOAD2
// is NX1.0-1.4 only, meter is the OF1.5 OFPAT_METER action, goto_table the
// only instruction after Apply-Actions, move is OF1.5's OFPAT_COPY_FIELD as
// encode_REG_MOVE writes it). Anything else throws UnsupportedFlow.
import type { OfAction, OfNat } from './flow.js';
import { fieldByName, moveSubfields, oxmEntry, oxmFieldHeader, unsupported, valueBytes } from './oxm.js';

const NX_VENDOR_ID = 0x00002320;
const OFPAT = { OUTPUT: 0, SET_QUEUE: 21, SET_NW_TTL: 23, DEC_NW_TTL: 24, PUSH_VLAN: 17, POP_VLAN: 18, PUSH_MPLS: 19, POP_MPLS: 20, SET_FIELD: 25, COPY_FIELD: 28, METER: 29, EXPERIMENTER: 0xffff } as const;
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

/** set_field (OFPAT_SET_FIELD with an OXM; the mask goes out only if not all-ones, as set_field_parse__ leaves it). */
function setField(x: Extract<OfAction, { a: 'set_field' }>): Buffer {
  const spec = fieldByName(x.field);
  if (!spec) return unsupported(`set_field ->${x.field}`, `set_field: field '${x.field}' is not encoded natively`);
  if (!spec.writable) return unsupported(`set_field ->${x.field} read-only`, `set_field: ${x.field} is read-only`);
  if (spec.kind === 'frag' || spec.kind === 'ct_state') return unsupported(`set_field ->${x.field}`, `set_field: ${x.field} is not encoded natively`);
  const value = valueBytes(x.value, spec.bytes, spec.name);
  const mask = x.mask === undefined ? undefined : valueBytes(x.mask, spec.bytes, spec.name);
  if (spec.name === 'vlan_vid' && !(value.readUInt16BE(0) & 0x1000)) return unsupported('set_field vlan_vid without OFPVID_PRESENT', 'set_field: vlan_vid needs the 0x1000 present bit in OF1.5');
  return ofpat(OFPAT.SET_FIELD, oxmEntry(spec, value, mask));
}

/**
 * move as OFPAT15_COPY_FIELD (ofp-actions.c encode_REG_MOVE, OF1.5 branch; openflow-1.5.h
 * ofp15_action_copy_field): n_bits, src_offset, dst_offset, pad[2], then where pad2[4] starts the
 * two fields' bare OXM headers for OF1.5, padded to 8.
 */
function move(x: Extract<OfAction, { a: 'move' }>): Buffer {
  const m = moveSubfields(x);
  return ofpat(OFPAT.COPY_FIELD, Buffer.concat([u16(m.bits), u16(m.srcOfs), u16(m.dstOfs), Buffer.alloc(2), oxmFieldHeader(m.src), oxmFieldHeader(m.dst)]));
}

/** NXAST_RESUBMIT_TABLE: 16-bit in_port (OFPP_IN_PORT when none), table. */
function resubmit(x: Extract<OfAction, { a: 'resubmit' }>): Buffer {
  const inPort = x.port === undefined ? OFPP_IN_PORT16 : x.port;
  if (inPort >= OFPP_MAX && inPort !== OFPP_IN_PORT16) return unsupported('resubmit reserved port', `resubmit: port ${inPort} is not encoded natively`);
  return nxast(NXAST.RESUBMIT_TABLE, Buffer.concat([u16(inPort), u8(byte(x.table, 'resubmit table')), Buffer.alloc(3)]));
}

/** nat(...) inside ct(): NXAST_NAT with the range parts OVS puts only when non-zero (encode_NAT). */
function nat(n: OfNat): Buffer {
  let flags = 0, present = 0;
  const parts: Buffer[] = [];
  if (n.type !== 'restore') {
    flags |= n.type === 'src' ? 1 : 2;
    const v4 = (n.min ?? n.max)?.length !== 16;
    const [minBit, maxBit] = v4 ? [1, 2] : [4, 8];
    if (n.min && n.min.some((x) => x)) {
      parts.push(Buffer.from(n.min));
      present |= minBit;
    }
    if (n.max && n.max.some((x) => x)) {
      parts.push(Buffer.from(n.max));
      present |= maxBit;
    }
    if (n.portMin) {
      parts.push(u16(n.portMin));
      present |= 16;
    }
    if (n.portMax) {
      parts.push(u16(n.portMax));
      present |= 32;
    }
  }
  if (n.persistent) flags |= 4;
  if (n.hash) flags |= 8;
  if (n.random) flags |= 16;
  return nxast(NXAST.NAT, Buffer.concat([Buffer.alloc(2), u16(flags), u16(present), ...parts]));
}

/** ct(...): NXAST_CT with an immediate zone; nat, then the exec actions, nest after it (parse_CT). */
function ct(x: Extract<OfAction, { a: 'ct' }>): Buffer {
  const flags = (x.commit ? 1 : 0) | (x.force ? 2 : 0);
  // flags, zone_src (0: immediate), zone_imm, recirc_table (OFPTT_ALL: none), pad[3], alg.
  const body = Buffer.concat([u16(flags), u32(0), u16(x.zone), u8(x.table === undefined ? 0xff : byte(x.table, 'ct table')), Buffer.alloc(3), u16(0)]);
  const out = Buffer.concat([nxast(NXAST.CT, body), ...(x.nat ? [nat(x.nat)] : []), ...(x.exec ?? []).map(action)]);
  out.writeUInt16BE(out.length, 2);
  return out;
}

const byte = (n: number, what: string): number => (Number.isInteger(n) && n >= 0 && n <= 0xff ? n : unsupported(`${what} range`, `${what}: ${n} out of range`));

/** One action (not an instruction) as OF1.5 wire bytes. */
export function action(x: OfAction): Buffer {
  switch (x.a) {
    case 'output':
      if (x.port >= OFPP_MAX) return unsupported('output reserved port', `output: port ${x.port} is not encoded natively`);
      return ofpat(OFPAT.OUTPUT, Buffer.concat([u32(x.port), u16(0), Buffer.alloc(6)]));
    case 'in_port':
      return ofpat(OFPAT.OUTPUT, Buffer.concat([u32(OFPP11_IN_PORT), u16(0), Buffer.alloc(6)]));
    case 'resubmit':
      return resubmit(x);
    case 'push_vlan':
      return ofpat(OFPAT.PUSH_VLAN, Buffer.concat([u16(x.tpid), Buffer.alloc(2)]));
    case 'pop_vlan':
      return ofpat(OFPAT.POP_VLAN, Buffer.alloc(4));
    case 'push_mpls':
      return ofpat(OFPAT.PUSH_MPLS, Buffer.concat([u16(x.ethertype), Buffer.alloc(2)]));
    case 'pop_mpls':
      return ofpat(OFPAT.POP_MPLS, Buffer.concat([u16(x.ethertype), Buffer.alloc(2)]));
    case 'set_field':
      return setField(x);
    case 'mod_nw_ttl':
      return ofpat(OFPAT.SET_NW_TTL, Buffer.concat([u8(byte(x.ttl, 'mod_nw_ttl')), Buffer.alloc(3)]));
    case 'dec_ttl':
      // dec_ttl with no controller ids is OFPAT_DEC_NW_TTL (encode_DEC_TTL).
      return ofpat(OFPAT.DEC_NW_TTL, Buffer.alloc(4));
    case 'ct':
      return ct(x);
    case 'ct_clear':
      return nxast(NXAST.CT_CLEAR, Buffer.alloc(6));
    case 'clone': {
      const out = Buffer.concat([nxast(NXAST.CLONE, Buffer.alloc(6)), ...x.actions.map(action)]);
      out.writeUInt16BE(out.length, 2);
      return out;
    }
    case 'meter':
      return ofpat(OFPAT.METER, u32(x.id));
    case 'set_queue':
      return ofpat(OFPAT.SET_QUEUE, u32(x.queue));
    case 'move':
      return move(x);
    case 'sample':
      return nxast(NXAST.SAMPLE, Buffer.concat([u16(x.probability), u32(x.collectorSetId ?? 0), u32(x.obsDomainId ?? 0), u32(x.obsPointId ?? 0)]));
    case 'goto_table':
      return unsupported('goto_table not last', 'actions: goto_table must be the last action');
  }
}

/** The OF1.5 instruction list: Apply-Actions, then Goto-Table if the list ends with one. */
export function encodeInstructions(list: OfAction[]): Buffer {
  const last = list[list.length - 1];
  const gotoTable = last?.a === 'goto_table' ? byte(last.table, 'goto_table') : undefined;
  const acts = (gotoTable === undefined ? list : list.slice(0, -1)).map(action);
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
