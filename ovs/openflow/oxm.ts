// OpenFlow 1.5 matches from a structured Match (flow.ts): the field
// vocabulary our translators emit, encoded as OVS's own ovs-ofctl encodes it
// for OF1.5 (lib/nx-match.c nx_put_raw: field order, OXM-over-NXM header
// choice per nxm_field_by_mf_id, registers as 64-bit OXM_OF_PKT_REG pairs).
// A value that does not fit its field throws UnsupportedFlow. A value that
// fits but OVS deems invalid (mf_is_value_valid) is sent as is: the switch
// refuses it (OFPBMC_BAD_VALUE) as ovs-ofctl would have refused the line.
import type { FieldValue, Match, OfAction } from './flow.js';

/** A flow the native encoder does not cover; `form` names the construct (for coverage reports). */
export class UnsupportedFlow extends Error {
  constructor(
    readonly form: string,
    message: string,
  ) {
    super(message);
    this.name = 'UnsupportedFlow';
  }
}

export const unsupported = (form: string, message: string): never => {
  throw new UnsupportedFlow(form, message);
};

// OXM classes (openflow-1.2 ofp_oxm_class; OFPXMC15_PACKET_REGS is OF1.5's register class).
const NXM_OF = 0x0000;
const NXM_NX = 0x0001;
const OXM_OF = 0x8000;
const OXM_REGS = 0x8001;

type Kind = 'int' | 'mac' | 'ipv4' | 'ipv6' | 'frag' | 'ct_state' | 'port';
type Prereq = 'none' | 'eth' | 'mpls' | 'ipv4' | 'ipv6' | 'ip' | 'arp' | 'tcp' | 'udp' | 'sctp' | 'icmpv4' | 'icmpv6';

export interface FieldSpec {
  /** OVS's canonical name (meta-flow.h). */
  name: string;
  bytes: number;
  oxmClass: number;
  oxmField: number;
  maskable: boolean;
  kind: Kind;
  /** Significant low bits; a value above them is invalid (mf_is_value_valid). */
  bits: number;
  prereq: Prereq;
  writable: boolean;
  /**
   * The name OVS prints a subfield of it with (meta-flow.c mf_format_subfield: the OF1.0-era
   * NXM/OXM name, as ovs-ofctl 3.1 prints it back), set only where `bits` is OVS's n_bits too:
   * the fields a move (ovs-actions(7)) is encoded for.
   */
  nxm?: string;
}

const f = (name: string, bytes: number, oxmClass: number, oxmField: number, maskable: boolean, kind: Kind, prereq: Prereq, opts: { bits?: number; writable?: boolean; nxm?: string } = {}): FieldSpec => ({
  name, bytes, oxmClass, oxmField, maskable, kind, prereq, bits: opts.bits ?? bytes * 8, writable: opts.writable ?? true, ...(opts.nxm ? { nxm: opts.nxm } : {}),
});

// Header per field as OVS picks it for OF1.5 (the newest OXM if there is one, else NXM).
const FIELDS: FieldSpec[] = [
  f('in_port', 4, OXM_OF, 0, false, 'port', 'none'),
  f('eth_src', 6, OXM_OF, 4, true, 'mac', 'eth', { nxm: 'NXM_OF_ETH_SRC' }),
  f('eth_dst', 6, OXM_OF, 3, true, 'mac', 'eth', { nxm: 'NXM_OF_ETH_DST' }),
  f('eth_type', 2, OXM_OF, 5, false, 'int', 'eth', { writable: false, nxm: 'NXM_OF_ETH_TYPE' }),
  f('vlan_vid', 2, OXM_OF, 6, true, 'int', 'eth', { bits: 13 }),
  f('vlan_pcp', 1, OXM_OF, 7, false, 'int', 'eth', { bits: 3 }),
  f('mpls_label', 4, OXM_OF, 34, false, 'int', 'mpls', { bits: 20 }),
  f('mpls_tc', 1, OXM_OF, 35, false, 'int', 'mpls', { bits: 3 }),
  f('mpls_bos', 1, OXM_OF, 36, false, 'int', 'mpls', { bits: 1, writable: false }),
  f('mpls_ttl', 1, NXM_NX, 30, false, 'int', 'mpls'),
  f('ip_src', 4, OXM_OF, 11, true, 'ipv4', 'ipv4', { nxm: 'NXM_OF_IP_SRC' }),
  f('ip_dst', 4, OXM_OF, 12, true, 'ipv4', 'ipv4', { nxm: 'NXM_OF_IP_DST' }),
  f('ipv6_src', 16, OXM_OF, 26, true, 'ipv6', 'ipv6', { nxm: 'NXM_NX_IPV6_SRC' }),
  f('ipv6_dst', 16, OXM_OF, 27, true, 'ipv6', 'ipv6', { nxm: 'NXM_NX_IPV6_DST' }),
  f('ip_frag', 1, NXM_NX, 26, true, 'frag', 'ip', { bits: 2, writable: false }),
  f('ip_dscp', 1, OXM_OF, 8, false, 'int', 'ip', { bits: 6, nxm: 'OXM_OF_IP_DSCP' }),
  f('nw_ecn', 1, OXM_OF, 9, false, 'int', 'ip', { bits: 2, nxm: 'NXM_NX_IP_ECN' }),
  f('nw_ttl', 1, NXM_NX, 29, false, 'int', 'ip', { nxm: 'NXM_NX_IP_TTL' }),
  f('nw_proto', 1, OXM_OF, 10, false, 'int', 'ip', { writable: false, nxm: 'NXM_OF_IP_PROTO' }),
  f('tcp_src', 2, OXM_OF, 13, true, 'int', 'tcp', { nxm: 'NXM_OF_TCP_SRC' }),
  f('tcp_dst', 2, OXM_OF, 14, true, 'int', 'tcp', { nxm: 'NXM_OF_TCP_DST' }),
  f('tcp_flags', 2, OXM_OF, 42, true, 'int', 'tcp', { bits: 12, writable: false }),
  f('udp_src', 2, OXM_OF, 15, true, 'int', 'udp', { nxm: 'NXM_OF_UDP_SRC' }),
  f('udp_dst', 2, OXM_OF, 16, true, 'int', 'udp', { nxm: 'NXM_OF_UDP_DST' }),
  f('sctp_src', 2, OXM_OF, 17, true, 'int', 'sctp', { nxm: 'OXM_OF_SCTP_SRC' }),
  f('sctp_dst', 2, OXM_OF, 18, true, 'int', 'sctp', { nxm: 'OXM_OF_SCTP_DST' }),
  f('icmp_type', 1, OXM_OF, 19, false, 'int', 'icmpv4'),
  f('icmp_code', 1, OXM_OF, 20, false, 'int', 'icmpv4'),
  f('icmpv6_type', 1, OXM_OF, 29, false, 'int', 'icmpv6'),
  f('icmpv6_code', 1, OXM_OF, 30, false, 'int', 'icmpv6'),
  f('arp_op', 2, OXM_OF, 21, false, 'int', 'arp', { bits: 8 }),
  f('arp_spa', 4, OXM_OF, 22, true, 'ipv4', 'arp'),
  f('arp_tpa', 4, OXM_OF, 23, true, 'ipv4', 'arp'),
  f('arp_sha', 6, OXM_OF, 24, true, 'mac', 'arp'),
  f('arp_tha', 6, OXM_OF, 25, true, 'mac', 'arp'),
  // Registers as set_field targets keep their NXM header (MFF_REGn has no OXM); matches use xregs.
  ...Array.from({ length: 16 }, (_, i) => f(`reg${i}`, 4, NXM_NX, i, true, 'int', 'none', { nxm: `NXM_NX_REG${i}` })),
  f('pkt_mark', 4, NXM_NX, 33, true, 'int', 'none', { nxm: 'NXM_NX_PKT_MARK' }),
  // OpenFlow's pipeline metadata: never in the datapath, frozen with a recirculation (a move's home for saved bits).
  f('metadata', 8, OXM_OF, 2, true, 'int', 'none', { nxm: 'OXM_OF_METADATA' }),
  f('ct_state', 4, NXM_NX, 105, true, 'ct_state', 'none', { writable: false }),
  f('ct_zone', 2, NXM_NX, 106, false, 'int', 'none', { writable: false }),
  f('ct_mark', 4, NXM_NX, 107, true, 'int', 'none'),
  f('ct_label', 16, NXM_NX, 108, true, 'int', 'none'),
];

const BY_NAME = new Map(FIELDS.map((x) => [x.name, x]));
const BY_NXM = new Map(FIELDS.filter((x) => x.nxm).map((x) => [x.nxm!, x]));
// ovs-fields(7) aliases the translators (or people) use.
const ALIASES: Record<string, string> = {
  dl_src: 'eth_src', dl_dst: 'eth_dst', dl_type: 'eth_type',
  nw_src: 'ip_src', nw_dst: 'ip_dst', ip_proto: 'nw_proto', ip_ecn: 'nw_ecn', nw_frag: 'ip_frag',
  icmpv4_type: 'icmp_type', icmpv4_code: 'icmp_code', mpls_bos: 'mpls_bos',
};

export function fieldByName(name: string): FieldSpec | undefined {
  return BY_NAME.get(ALIASES[name] ?? name);
}

/** A field by the NXM/OXM name OVS prints in a subfield (FieldSpec.nxm), e.g. NXM_NX_REG2. */
export const fieldByNxm = (name: string): FieldSpec | undefined => BY_NXM.get(name);

/** A move (ovs-actions(7) move:src[..]->dst[..]) resolved to its fields and bit counts. */
export interface MoveSpec {
  src: FieldSpec;
  dst: FieldSpec;
  srcOfs: number;
  dstOfs: number;
  bits: number;
}

/**
 * A move checked as ovs-ofctl checks it (nx-match.c nxm_parse_reg_move, mf_check_src/mf_check_dst):
 * both fields known (with the NXM name OVS prints), the bits inside each field, the destination
 * writable. `bits` absent = the source's whole width, from srcOfs 0.
 */
export function moveSubfields(x: Extract<OfAction, { a: 'move' }>): MoveSpec {
  const what = `move ${x.src}->${x.dst}`;
  const src = fieldByName(x.src), dst = fieldByName(x.dst);
  if (!src?.nxm) return unsupported(`move from ${x.src}`, `${what}: field '${x.src}' is not encoded natively in a move`);
  if (!dst?.nxm) return unsupported(`move to ${x.dst}`, `${what}: field '${x.dst}' is not encoded natively in a move`);
  if (!dst.writable) return unsupported(`move to ${dst.name} read-only`, `${what}: ${dst.name} is read-only`);
  const srcOfs = x.srcOfs ?? 0, dstOfs = x.dstOfs ?? 0, bits = x.bits ?? src.bits;
  const ok = (n: number) => Number.isInteger(n) && n >= 0;
  if (!ok(srcOfs) || !ok(dstOfs) || !ok(bits) || bits === 0) return unsupported('move bit range', `${what}: bad bit range`);
  if (srcOfs + bits > src.bits) return unsupported('move bit range', `${what}: bits ${srcOfs}..${srcOfs + bits - 1} are outside ${src.name} (${src.bits} bits)`);
  if (dstOfs + bits > dst.bits) return unsupported('move bit range', `${what}: bits ${dstOfs}..${dstOfs + bits - 1} are outside ${dst.name} (${dst.bits} bits)`);
  return { src, dst, srcOfs, dstOfs, bits };
}

/** A value with its mask, both `bytes` long, network byte order. */
export interface Masked {
  value: Buffer;
  mask: Buffer;
}

const isOnes = (b: Buffer) => b.every((x) => x === 0xff);
const isZero = (b: Buffer) => b.every((x) => x === 0);
const and = (a: Buffer, b: Buffer) => Buffer.from(a.map((x, i) => x & b[i]!));

/** A field value as `bytes` big-endian bytes: a number (up to 48 bits) or bytes, right-aligned (a short ct_label is the integer it spells). */
export function valueBytes(v: FieldValue, bytes: number, what: string): Buffer {
  const out = Buffer.alloc(bytes);
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || v >= 2 ** (8 * bytes)) return unsupported(`${what} value range`, `${what}: value ${v} does not fit ${bytes} bytes`);
    let x = v;
    for (let i = bytes - 1; i >= 0; i--) {
      out[i] = x % 256;
      x = Math.floor(x / 256);
    }
    return out;
  }
  if (v.length > bytes) return unsupported(`${what} value range`, `${what}: ${v.length} bytes do not fit ${bytes}`);
  out.set(v, bytes - v.length);
  return out;
}

/** OXM header word: class(16) field(7) hasmask(1) length(8). */
const oxmHeader = (cls: number, field: number, masked: boolean, len: number) => ((cls << 16) | (field << 9) | (masked ? 0x100 : 0) | len) >>> 0;

/** A field's bare OXM header (no value), as nx_put_mff_header writes it into an action. */
export function oxmFieldHeader(spec: Pick<FieldSpec, 'oxmClass' | 'oxmField' | 'bytes'>): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(oxmHeader(spec.oxmClass, spec.oxmField, false, spec.bytes), 0);
  return out;
}

/** One OXM TLV; masked only when the mask is not all-ones (nx-match.c nxm_put). */
export function oxmEntry(spec: Pick<FieldSpec, 'oxmClass' | 'oxmField'>, value: Buffer, mask?: Buffer): Buffer {
  const masked = mask !== undefined && !isOnes(mask);
  const len = value.length * (masked ? 2 : 1);
  const out = Buffer.alloc(4 + len);
  out.writeUInt32BE(oxmHeader(spec.oxmClass, spec.oxmField, masked, len), 0);
  value.copy(out, 4);
  if (masked) mask!.copy(out, 4 + value.length);
  return out;
}

const VLAN_VID = fieldByName('vlan_vid')!;
const VLAN_PCP = fieldByName('vlan_pcp')!;
const PACKET_TYPE = { oxmClass: OXM_OF, oxmField: 44 };

/** Emission order of nx_put_raw for OF1.5 (fields after the VLAN and register special cases). */
const ORDER_L2 = ['in_port', 'eth_src', 'eth_dst', 'eth_type'];
const ORDER_MPLS = ['mpls_tc', 'mpls_bos', 'mpls_ttl', 'mpls_label'];
const ORDER_IP = ['ip_src', 'ip_dst', 'ipv6_src', 'ipv6_dst', 'ip_frag', 'ip_dscp', 'nw_ecn', 'nw_ttl', 'nw_proto'];
const ORDER_L4 = ['tcp_src', 'tcp_dst', 'tcp_flags', 'udp_src', 'udp_dst', 'sctp_src', 'sctp_dst', 'icmp_type', 'icmp_code', 'icmpv6_type', 'icmpv6_code'];
const ORDER_ARP = ['arp_op', 'arp_spa', 'arp_tpa', 'arp_sha', 'arp_tha'];
const ORDER_META = ['pkt_mark', 'ct_state', 'ct_zone', 'ct_mark', 'ct_label'];

const ETH = { IP: 0x0800, IPV6: 0x86dd, ARP: 0x0806, RARP: 0x8035, MPLS: 0x8847, MPLS_MCAST: 0x8848 };

/** The match by field name -> masked value (value already ANDed with its mask, as match_set_*_masked does). */
export type MatchFields = Map<string, Masked>;

/** The match's fields as bytes; a field given twice or a mask on an unmaskable field throws UnsupportedFlow. */
export function matchFields(match: Match): MatchFields {
  const fields: MatchFields = new Map();
  let vlan: Masked | undefined;
  for (const f of match) {
    if (f.field === 'vlan_tci' || f.field === 'dl_vlan') {
      if (vlan) return unsupported('match vlan_tci twice', 'match: more than one VLAN TCI constraint');
      if (f.field === 'dl_vlan') {
        // dl_vlan=VID: a tag with that VID (ovs-fields(7)), i.e. vlan_tci=0x1000|VID/0x1fff.
        const vid = valueBytes(f.value, 2, 'dl_vlan').readUInt16BE(0);
        if (vid > 0xfff) return unsupported('match dl_vlan range', `dl_vlan=${vid} out of range`);
        vlan = { value: valueBytes(0x1000 | vid, 2, 'dl_vlan'), mask: valueBytes(0x1fff, 2, 'dl_vlan') };
      } else {
        const value = valueBytes(f.value, 2, 'vlan_tci'), mask = f.mask === undefined ? Buffer.alloc(2, 0xff) : valueBytes(f.mask, 2, 'vlan_tci');
        vlan = { value: and(value, mask), mask };
      }
      continue;
    }
    const spec = fieldByName(f.field);
    if (!spec) return unsupported(`match field ${f.field}`, `match: field '${f.field}' is not encoded natively`);
    if (fields.has(spec.name)) return unsupported(`match ${spec.name} twice`, `match: '${spec.name}' given twice`);
    if (f.mask !== undefined && !spec.maskable) return unsupported(`${spec.name} mask`, `${spec.name}: field is not maskable`);
    const value = valueBytes(f.value, spec.bytes, spec.name);
    const mask = f.mask === undefined ? Buffer.alloc(spec.bytes, 0xff) : valueBytes(f.mask, spec.bytes, spec.name);
    fields.set(spec.name, { value: and(value, mask), mask });
  }
  if (vlan) fields.set('vlan_tci', vlan);
  return fields;
}

function prereqOk(p: Prereq, dlType: number | undefined, proto: number | undefined): boolean {
  const ip = dlType === ETH.IP || dlType === ETH.IPV6;
  switch (p) {
    case 'none':
    case 'eth':
      return true;
    case 'mpls':
      return dlType === ETH.MPLS || dlType === ETH.MPLS_MCAST;
    case 'ipv4':
      return dlType === ETH.IP;
    case 'ipv6':
      return dlType === ETH.IPV6;
    case 'ip':
      return ip;
    case 'arp':
      return dlType === ETH.ARP || dlType === ETH.RARP;
    case 'tcp':
      return ip && proto === 6;
    case 'udp':
      return ip && proto === 17;
    case 'sctp':
      return ip && proto === 132;
    case 'icmpv4':
      return dlType === ETH.IP && proto === 1;
    case 'icmpv6':
      return dlType === ETH.IPV6 && proto === 58;
  }
}

/** The OXM TLVs of a match in nx_put_raw's order (no ofp_match header, no padding). */
export function encodeMatchFields(fields: MatchFields): Buffer {
  const dlType = fields.get('eth_type')?.value.readUInt16BE(0);
  const proto = fields.get('nw_proto')?.value[0];
  const parts: Buffer[] = [];
  let sawData = false, putData = false;
  for (const name of fields.keys()) {
    if (name === 'vlan_tci') {
      sawData = true;
      continue;
    }
    const spec = fieldByName(name)!;
    if (spec.prereq !== 'none') sawData = true;
    if (!prereqOk(spec.prereq, dlType, proto)) return unsupported(`match ${name} without its prerequisites`, `match: ${name} needs ${spec.prereq} (ovs-fields(7) prerequisites)`);
  }
  const put = (name: string) => {
    const mv = fields.get(name);
    if (!mv || isZero(mv.mask)) return;
    const spec = fieldByName(name)!;
    if (spec.prereq !== 'none') putData = true;
    // nxm_put_frag: both fragment bits masked is an exact match on the byte.
    const mask = name === 'ip_frag' && mv.mask[0] === 3 ? Buffer.from([0xff]) : mv.mask;
    parts.push(oxmEntry(spec, mv.value, mask));
  };
  ORDER_L2.forEach(put);
  const tci = fields.get('vlan_tci');
  if (tci && !isZero(tci.mask)) {
    putData = true;
    // nx_put_raw (OXM): the VID|CFI bits become OXM_OF_VLAN_VID, exact when both are fully masked;
    // the PCP bits an exact OXM_OF_VLAN_PCP, and only where a tagged VID is matched (so
    // vlan_tci=0/0xffff goes out as VLAN_VID=0, what ovs-ofctl sends for it too).
    const value = tci.value.readUInt16BE(0), mask = tci.mask.readUInt16BE(0);
    const vid = value & 0x1fff, vidMask = mask & 0x1fff;
    const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
    // PCP bits alone make ovs-ofctl add a packet_type match; no translator form needs that.
    if (!vidMask) return unsupported('match vlan_tci PCP without VID', `vlan_tci=0x${value.toString(16)}/0x${mask.toString(16)}: PCP bits without the VID are not encoded natively`);
    if (vidMask) parts.push(oxmEntry(VLAN_VID, u16(vid), vidMask === 0x1fff ? undefined : u16(vidMask)));
    if (vid && mask & 0xe000) parts.push(oxmEntry(VLAN_PCP, Buffer.from([value >> 13]), undefined));
  }
  ORDER_MPLS.forEach(put);
  ORDER_IP.forEach(put);
  ORDER_L4.forEach(put);
  ORDER_ARP.forEach(put);
  // OF1.5 matches registers as 64-bit xregs: xreg N = reg 2N (high half) and reg 2N+1 (low half).
  for (let x = 0; x < 8; x++) {
    const hi = fields.get(`reg${2 * x}`), lo = fields.get(`reg${2 * x + 1}`);
    if (!hi && !lo) continue;
    const value = Buffer.concat([hi?.value ?? Buffer.alloc(4), lo?.value ?? Buffer.alloc(4)]);
    const mask = Buffer.concat([hi?.mask ?? Buffer.alloc(4), lo?.mask ?? Buffer.alloc(4)]);
    if (!isZero(mask)) parts.push(oxmEntry({ oxmClass: OXM_REGS, oxmField: x }, value, mask));
  }
  ORDER_META.forEach(put);
  // A data field whose mask came out empty still made ovs-ofctl match Ethernet only (match_add_ethernet_prereq).
  if (sawData && !putData) parts.unshift(oxmEntry(PACKET_TYPE, Buffer.alloc(4)));
  return Buffer.concat(parts);
}

/** struct ofp_match (OFPMT_OXM) with its TLVs, padded to 8 bytes. */
export function encodeOfpMatch(match: Match): Buffer {
  const tlvs = encodeMatchFields(matchFields(match));
  const len = 4 + tlvs.length;
  const out = Buffer.alloc((len + 7) & ~7);
  out.writeUInt16BE(1, 0); // OFPMT_OXM
  out.writeUInt16BE(len, 2);
  tlvs.copy(out, 4);
  return out;
}

export { NXM_OF, NXM_NX, OXM_OF };
