// TCA_FLOWER_KEY_* <-> FlowerMatch. Table-driven: one row per key states its
// attribute ids, wire type and byte order (include/uapi/linux/pkt_cls.h and
// cls_flower.c fl_set_key: VLAN ids, MPLS label and ct keys are host order,
// everything else network order). A key without its _MASK is exact
// (fl_set_key_val copies an all-ones mask), which is how the model stores it.
import { bytesToHex, bytesToIp, bytesToMac, hexToBytes, ipFamily, ipToBytes, macToBytes } from '../addr.js';
import { Errno, VpfError } from '../errors.js';
import type { FlowerMatch, GeneveOpt, Masked } from '../model.js';
import { IpProto } from '../model.js';
import { AttrWriter, parseAttrs, read, type Attr } from './nlmsg.js';

export const F = {
  CLASSID: 1,
  INDEV: 2,
  ACT: 3,
  KEY_ETH_DST: 4,
  KEY_ETH_SRC: 6,
  KEY_ETH_TYPE: 8,
  KEY_IP_PROTO: 9,
  KEY_IPV4_SRC: 10,
  KEY_IPV4_DST: 12,
  KEY_IPV6_SRC: 14,
  KEY_IPV6_DST: 16,
  KEY_TCP_SRC: 18,
  KEY_TCP_DST: 19,
  KEY_UDP_SRC: 20,
  KEY_UDP_DST: 21,
  FLAGS: 22,
  KEY_VLAN_ID: 23,
  KEY_VLAN_PRIO: 24,
  KEY_VLAN_ETH_TYPE: 25,
  KEY_ENC_KEY_ID: 26,
  KEY_ENC_IPV4_SRC: 27,
  KEY_ENC_IPV4_DST: 29,
  KEY_ENC_IPV6_SRC: 31,
  KEY_ENC_IPV6_DST: 33,
  KEY_TCP_SRC_MASK: 35,
  KEY_TCP_DST_MASK: 36,
  KEY_UDP_SRC_MASK: 37,
  KEY_UDP_DST_MASK: 38,
  KEY_SCTP_SRC_MASK: 39,
  KEY_SCTP_DST_MASK: 40,
  KEY_SCTP_SRC: 41,
  KEY_SCTP_DST: 42,
  KEY_ENC_UDP_SRC_PORT: 43,
  KEY_ENC_UDP_DST_PORT: 45,
  KEY_FLAGS: 47,
  KEY_ICMPV4_CODE: 49,
  KEY_ICMPV4_TYPE: 51,
  KEY_ICMPV6_CODE: 53,
  KEY_ICMPV6_TYPE: 55,
  KEY_ARP_SIP: 57,
  KEY_ARP_TIP: 59,
  KEY_ARP_OP: 61,
  KEY_ARP_SHA: 63,
  KEY_ARP_THA: 65,
  KEY_MPLS_TTL: 67,
  KEY_MPLS_BOS: 68,
  KEY_MPLS_TC: 69,
  KEY_MPLS_LABEL: 70,
  KEY_TCP_FLAGS: 71,
  KEY_IP_TOS: 73,
  KEY_IP_TTL: 75,
  KEY_CVLAN_ID: 77,
  KEY_CVLAN_PRIO: 78,
  KEY_CVLAN_ETH_TYPE: 79,
  KEY_ENC_IP_TOS: 80,
  KEY_ENC_IP_TTL: 82,
  KEY_ENC_OPTS: 84,
  KEY_ENC_OPTS_MASK: 85,
  IN_HW_COUNT: 86,
  KEY_PORT_SRC_MIN: 87,
  KEY_PORT_SRC_MAX: 88,
  KEY_PORT_DST_MIN: 89,
  KEY_PORT_DST_MAX: 90,
  KEY_CT_STATE: 91,
  KEY_CT_ZONE: 93,
  KEY_CT_MARK: 95,
  KEY_CT_LABELS: 97,
  KEY_MPLS_OPTS: 99,
  KEY_HASH: 100,
  KEY_NUM_OF_VLANS: 102,
  KEY_PPPOE_SID: 103,
  KEY_PPP_PROTO: 104,
  KEY_L2TPV3_SID: 105,
  L2_MISS: 106,
  KEY_CFM: 107,
  KEY_SPI: 108,
  KEY_ENC_FLAGS: 110,
} as const;

/** Keys tc flower has but vpf does not model: refused by name, never dropped. */
const UNMODELLED: Record<number, string> = {
  [F.CLASSID]: 'TCA_FLOWER_CLASSID (classid/hw_tc)',
  [F.KEY_ENC_UDP_SRC_PORT]: 'TCA_FLOWER_KEY_ENC_UDP_SRC_PORT',
  [F.KEY_ENC_UDP_SRC_PORT + 1]: 'TCA_FLOWER_KEY_ENC_UDP_SRC_PORT_MASK',
  [F.KEY_MPLS_OPTS]: 'TCA_FLOWER_KEY_MPLS_OPTS (mpls lse depth)',
  [F.KEY_HASH]: 'TCA_FLOWER_KEY_HASH',
  [F.KEY_HASH + 1]: 'TCA_FLOWER_KEY_HASH_MASK',
  [F.KEY_PPPOE_SID]: 'TCA_FLOWER_KEY_PPPOE_SID',
  [F.KEY_PPP_PROTO]: 'TCA_FLOWER_KEY_PPP_PROTO',
  [F.KEY_L2TPV3_SID]: 'TCA_FLOWER_KEY_L2TPV3_SID',
  [F.L2_MISS]: 'TCA_FLOWER_L2_MISS',
  [F.KEY_CFM]: 'TCA_FLOWER_KEY_CFM',
  [F.KEY_SPI]: 'TCA_FLOWER_KEY_SPI',
  [F.KEY_SPI + 1]: 'TCA_FLOWER_KEY_SPI_MASK',
  [F.KEY_ENC_FLAGS]: 'TCA_FLOWER_KEY_ENC_FLAGS',
  [F.KEY_ENC_FLAGS + 1]: 'TCA_FLOWER_KEY_ENC_FLAGS_MASK',
};

type Wire = 'u8' | 'u16' | 'be16' | 'u32' | 'be32' | 'mac' | 'ip4' | 'ip6' | 'label';

interface ScalarKey {
  field: keyof FlowerMatch;
  attr: number;
  /** Mask attribute; absent = the key is always exact and the model holds a bare number. */
  mask?: number;
  wire: Wire;
  name: string;
}

// Fixed-attribute keys. Family- or protocol-dependent keys (IPs, ports, ICMP) are handled below.
const SCALARS: ScalarKey[] = [
  { field: 'dstMac', attr: F.KEY_ETH_DST, mask: F.KEY_ETH_DST + 1, wire: 'mac', name: 'TCA_FLOWER_KEY_ETH_DST' },
  { field: 'srcMac', attr: F.KEY_ETH_SRC, mask: F.KEY_ETH_SRC + 1, wire: 'mac', name: 'TCA_FLOWER_KEY_ETH_SRC' },
  { field: 'ethType', attr: F.KEY_ETH_TYPE, wire: 'be16', name: 'TCA_FLOWER_KEY_ETH_TYPE' },
  { field: 'ipProto', attr: F.KEY_IP_PROTO, wire: 'u8', name: 'TCA_FLOWER_KEY_IP_PROTO' },
  { field: 'numOfVlans', attr: F.KEY_NUM_OF_VLANS, wire: 'u8', name: 'TCA_FLOWER_KEY_NUM_OF_VLANS' },
  { field: 'vlanId', attr: F.KEY_VLAN_ID, wire: 'u16', name: 'TCA_FLOWER_KEY_VLAN_ID' },
  { field: 'vlanPrio', attr: F.KEY_VLAN_PRIO, wire: 'u8', name: 'TCA_FLOWER_KEY_VLAN_PRIO' },
  { field: 'vlanEthType', attr: F.KEY_VLAN_ETH_TYPE, wire: 'be16', name: 'TCA_FLOWER_KEY_VLAN_ETH_TYPE' },
  { field: 'cvlanId', attr: F.KEY_CVLAN_ID, wire: 'u16', name: 'TCA_FLOWER_KEY_CVLAN_ID' },
  { field: 'cvlanPrio', attr: F.KEY_CVLAN_PRIO, wire: 'u8', name: 'TCA_FLOWER_KEY_CVLAN_PRIO' },
  { field: 'cvlanEthType', attr: F.KEY_CVLAN_ETH_TYPE, wire: 'be16', name: 'TCA_FLOWER_KEY_CVLAN_ETH_TYPE' },
  { field: 'mplsTtl', attr: F.KEY_MPLS_TTL, wire: 'u8', name: 'TCA_FLOWER_KEY_MPLS_TTL' },
  { field: 'mplsBos', attr: F.KEY_MPLS_BOS, wire: 'u8', name: 'TCA_FLOWER_KEY_MPLS_BOS' },
  { field: 'mplsTc', attr: F.KEY_MPLS_TC, wire: 'u8', name: 'TCA_FLOWER_KEY_MPLS_TC' },
  { field: 'mplsLabel', attr: F.KEY_MPLS_LABEL, wire: 'u32', name: 'TCA_FLOWER_KEY_MPLS_LABEL' },
  { field: 'tcpFlags', attr: F.KEY_TCP_FLAGS, mask: F.KEY_TCP_FLAGS + 1, wire: 'be16', name: 'TCA_FLOWER_KEY_TCP_FLAGS' },
  { field: 'ipTos', attr: F.KEY_IP_TOS, mask: F.KEY_IP_TOS + 1, wire: 'u8', name: 'TCA_FLOWER_KEY_IP_TOS' },
  { field: 'ipTtl', attr: F.KEY_IP_TTL, mask: F.KEY_IP_TTL + 1, wire: 'u8', name: 'TCA_FLOWER_KEY_IP_TTL' },
  { field: 'arpSip', attr: F.KEY_ARP_SIP, mask: F.KEY_ARP_SIP + 1, wire: 'ip4', name: 'TCA_FLOWER_KEY_ARP_SIP' },
  { field: 'arpTip', attr: F.KEY_ARP_TIP, mask: F.KEY_ARP_TIP + 1, wire: 'ip4', name: 'TCA_FLOWER_KEY_ARP_TIP' },
  { field: 'arpOp', attr: F.KEY_ARP_OP, mask: F.KEY_ARP_OP + 1, wire: 'u8', name: 'TCA_FLOWER_KEY_ARP_OP' },
  { field: 'arpSha', attr: F.KEY_ARP_SHA, mask: F.KEY_ARP_SHA + 1, wire: 'mac', name: 'TCA_FLOWER_KEY_ARP_SHA' },
  { field: 'arpTha', attr: F.KEY_ARP_THA, mask: F.KEY_ARP_THA + 1, wire: 'mac', name: 'TCA_FLOWER_KEY_ARP_THA' },
  { field: 'ipFlags', attr: F.KEY_FLAGS, mask: F.KEY_FLAGS + 1, wire: 'be32', name: 'TCA_FLOWER_KEY_FLAGS' },
  { field: 'ctState', attr: F.KEY_CT_STATE, mask: F.KEY_CT_STATE + 1, wire: 'u16', name: 'TCA_FLOWER_KEY_CT_STATE' },
  { field: 'ctZone', attr: F.KEY_CT_ZONE, mask: F.KEY_CT_ZONE + 1, wire: 'u16', name: 'TCA_FLOWER_KEY_CT_ZONE' },
  { field: 'ctMark', attr: F.KEY_CT_MARK, mask: F.KEY_CT_MARK + 1, wire: 'u32', name: 'TCA_FLOWER_KEY_CT_MARK' },
  { field: 'ctLabel', attr: F.KEY_CT_LABELS, mask: F.KEY_CT_LABELS + 1, wire: 'label', name: 'TCA_FLOWER_KEY_CT_LABELS' },
  { field: 'encKeyId', attr: F.KEY_ENC_KEY_ID, wire: 'be32', name: 'TCA_FLOWER_KEY_ENC_KEY_ID' },
  { field: 'encDstPort', attr: F.KEY_ENC_UDP_DST_PORT, mask: F.KEY_ENC_UDP_DST_PORT + 1, wire: 'be16', name: 'TCA_FLOWER_KEY_ENC_UDP_DST_PORT' },
  { field: 'encTos', attr: F.KEY_ENC_IP_TOS, mask: F.KEY_ENC_IP_TOS + 1, wire: 'u8', name: 'TCA_FLOWER_KEY_ENC_IP_TOS' },
  { field: 'encTtl', attr: F.KEY_ENC_IP_TTL, mask: F.KEY_ENC_IP_TTL + 1, wire: 'u8', name: 'TCA_FLOWER_KEY_ENC_IP_TTL' },
];

const WIDTH: Record<Wire, number> = { u8: 1, u16: 2, be16: 2, u32: 4, be32: 4, mac: 6, ip4: 4, ip6: 16, label: 16 };
const ALL_ONES: Record<Wire, number | string> = {
  u8: 0xff,
  u16: 0xffff,
  be16: 0xffff,
  u32: 0xffffffff,
  be32: 0xffffffff,
  mac: 'ff:ff:ff:ff:ff:ff',
  ip4: '255.255.255.255',
  ip6: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  label: 'ff'.repeat(16),
};

function decodeValue(a: Attr, wire: Wire, name: string): number | string {
  switch (wire) {
    case 'u8':
      return read.u8(a, name);
    case 'u16':
      return read.u16(a, name);
    case 'be16':
      return read.be16(a, name);
    case 'u32':
      return read.u32(a, name);
    case 'be32':
      return read.be32(a, name);
    case 'mac':
      return bytesToMac(read.bytes(a, name, 6));
    case 'ip4':
    case 'ip6':
      return bytesToIp(read.bytes(a, name, WIDTH[wire]));
    case 'label':
      return bytesToHex(read.binaryUpTo(a, name, 16));
  }
}

function encodeValue(w: AttrWriter, attr: number, wire: Wire, v: number | string): void {
  switch (wire) {
    case 'u8':
      w.u8(attr, v as number);
      break;
    case 'u16':
      w.u16(attr, v as number);
      break;
    case 'be16':
      w.be16(attr, v as number);
      break;
    case 'u32':
      w.u32(attr, v as number);
      break;
    case 'be32':
      w.be32(attr, v as number);
      break;
    case 'mac':
      w.raw(attr, Buffer.from(macToBytes(v as string)));
      break;
    case 'ip4':
    case 'ip6':
      w.raw(attr, Buffer.from(ipToBytes(v as string)));
      break;
    case 'label':
      w.raw(attr, Buffer.from(hexToBytes(v as string)));
      break;
  }
}

/** Ports and ICMP pick their attribute by ip_proto; IPs by family (cls_flower.c fl_set_key). */
function l4PortAttrs(ipProto: number | undefined): { src: number; dst: number; srcMask: number; dstMask: number; name: string } | undefined {
  if (ipProto === IpProto.TCP) return { src: F.KEY_TCP_SRC, dst: F.KEY_TCP_DST, srcMask: F.KEY_TCP_SRC_MASK, dstMask: F.KEY_TCP_DST_MASK, name: 'TCP' };
  if (ipProto === IpProto.UDP) return { src: F.KEY_UDP_SRC, dst: F.KEY_UDP_DST, srcMask: F.KEY_UDP_SRC_MASK, dstMask: F.KEY_UDP_DST_MASK, name: 'UDP' };
  if (ipProto === IpProto.SCTP) return { src: F.KEY_SCTP_SRC, dst: F.KEY_SCTP_DST, srcMask: F.KEY_SCTP_SRC_MASK, dstMask: F.KEY_SCTP_DST_MASK, name: 'SCTP' };
  return undefined;
}

const PORT_ATTRS = [
  { p: 'TCP', src: F.KEY_TCP_SRC, dst: F.KEY_TCP_DST, srcMask: F.KEY_TCP_SRC_MASK, dstMask: F.KEY_TCP_DST_MASK, proto: IpProto.TCP },
  { p: 'UDP', src: F.KEY_UDP_SRC, dst: F.KEY_UDP_DST, srcMask: F.KEY_UDP_SRC_MASK, dstMask: F.KEY_UDP_DST_MASK, proto: IpProto.UDP },
  { p: 'SCTP', src: F.KEY_SCTP_SRC, dst: F.KEY_SCTP_DST, srcMask: F.KEY_SCTP_SRC_MASK, dstMask: F.KEY_SCTP_DST_MASK, proto: IpProto.SCTP },
];

const ICMP_ATTRS = [
  { type: F.KEY_ICMPV4_TYPE, code: F.KEY_ICMPV4_CODE, proto: IpProto.ICMP, p: 'ICMPV4' },
  { type: F.KEY_ICMPV6_TYPE, code: F.KEY_ICMPV6_CODE, proto: IpProto.ICMPV6, p: 'ICMPV6' },
];

const IP_ATTRS = [
  { field: 'srcIp', v4: F.KEY_IPV4_SRC, v6: F.KEY_IPV6_SRC, name: 'SRC' },
  { field: 'dstIp', v4: F.KEY_IPV4_DST, v6: F.KEY_IPV6_DST, name: 'DST' },
  { field: 'encSrcIp', v4: F.KEY_ENC_IPV4_SRC, v6: F.KEY_ENC_IPV6_SRC, name: 'ENC_SRC' },
  { field: 'encDstIp', v4: F.KEY_ENC_IPV4_DST, v6: F.KEY_ENC_IPV6_DST, name: 'ENC_DST' },
] as const;

// Attributes this module consumes (everything else in TCA_OPTIONS is the caller's or unknown).
export const KEY_ATTRS = new Set<number>([
  ...SCALARS.flatMap((k) => (k.mask ? [k.attr, k.mask] : [k.attr])),
  ...PORT_ATTRS.flatMap((p) => [p.src, p.dst, p.srcMask, p.dstMask]),
  ...ICMP_ATTRS.flatMap((i) => [i.type, i.type + 1, i.code, i.code + 1]),
  ...IP_ATTRS.flatMap((i) => [i.v4, i.v4 + 1, i.v6, i.v6 + 1]),
  F.KEY_PORT_SRC_MIN,
  F.KEY_PORT_SRC_MAX,
  F.KEY_PORT_DST_MIN,
  F.KEY_PORT_DST_MAX,
  F.INDEV,
  F.KEY_ENC_OPTS,
  F.KEY_ENC_OPTS_MASK,
]);

const ENC_OPT_GENEVE = 1;
const ENC_OPT_VXLAN = 2;
const GENEVE_CLASS = 1;
const GENEVE_TYPE = 2;
const GENEVE_DATA = 3;
const VXLAN_GBP = 1;

function decodeMasked(attrs: Map<number, Attr>, key: number, mask: number, wire: Wire, name: string): Masked<number | string> | undefined {
  const k = attrs.get(key);
  const m = attrs.get(mask);
  if (!k) {
    if (m) throw new VpfError(Errno.EINVAL, `${name}_MASK given without ${name}`, `${name}_MASK`);
    return undefined;
  }
  return { value: decodeValue(k, wire, name), mask: m ? decodeValue(m, wire, `${name}_MASK`) : ALL_ONES[wire] };
}

function decodeEncOpts(attrs: Map<number, Attr>): FlowerMatch['encOpts'] {
  const k = attrs.get(F.KEY_ENC_OPTS);
  const m = attrs.get(F.KEY_ENC_OPTS_MASK);
  if (!k) {
    if (m) throw new VpfError(Errno.EINVAL, 'TCA_FLOWER_KEY_ENC_OPTS_MASK given without TCA_FLOWER_KEY_ENC_OPTS');
    return undefined;
  }
  // cls_flower.c fl_set_enc_opt: the mask is mandatory once options are given.
  if (!m) throw new VpfError(Errno.EINVAL, 'Missing tunnel key enc_opts mask', 'TCA_FLOWER_KEY_ENC_OPTS_MASK');
  const one = (a: Attr, what: string) => {
    const geneve: GeneveOpt[] = [];
    let vxlan: number | undefined;
    for (const o of parseAttrs(a.value, what)) {
      if (o.type === ENC_OPT_GENEVE) {
        // A request carries one option per nest; fl_dump_key_geneve_opt puts them all in one nest, class/type/data in turn.
        const parts = parseAttrs(o.value, `${what} geneve`);
        for (let i = 0; i < parts.length || i === 0; i += 3) {
          const g = new Map(parts.slice(i, i + 3).map((x) => [x.type, x]));
          const cls = g.get(GENEVE_CLASS), typ = g.get(GENEVE_TYPE), dat = g.get(GENEVE_DATA);
          if (!cls || !typ || !dat) throw new VpfError(Errno.EINVAL, `${what}: geneve option needs class, type and data`);
          if (dat.value.length === 0 || dat.value.length > 124 || dat.value.length % 4) {
            throw new VpfError(Errno.EINVAL, `${what}: geneve option data must be 4..124 bytes, a multiple of 4`);
          }
          geneve.push({ class: read.be16(cls, 'GENEVE_CLASS'), type: read.u8(typ, 'GENEVE_TYPE'), data: bytesToHex(dat.value) });
        }
      } else if (o.type === ENC_OPT_VXLAN) {
        const v = new Map(parseAttrs(o.value, `${what} vxlan`).map((x) => [x.type, x]));
        const gbp = v.get(VXLAN_GBP);
        vxlan = gbp ? read.u32(gbp, 'VXLAN_GBP') : 0;
      } else throw new VpfError(Errno.EOPNOTSUPP, `${what}: tunnel option type ${o.type} (erspan/gtp/pfcp) is not supported`, what);
    }
    return { geneve, vxlan };
  };
  const val = one(k, 'TCA_FLOWER_KEY_ENC_OPTS');
  const msk = one(m, 'TCA_FLOWER_KEY_ENC_OPTS_MASK');
  const out: NonNullable<FlowerMatch['encOpts']> = {};
  if (val.geneve.length || msk.geneve.length) {
    if (val.geneve.length !== msk.geneve.length) throw new VpfError(Errno.EINVAL, 'geneve options and their masks differ in number');
    out.geneve = { value: val.geneve, mask: msk.geneve };
  }
  if (val.vxlan !== undefined) out.vxlanGbp = { value: val.vxlan, mask: msk.vxlan ?? 0xffffffff };
  if (out.geneve && out.vxlanGbp) throw new VpfError(Errno.EINVAL, 'geneve and vxlan options cannot be combined');
  return out;
}

/** Decodes the match keys of TCA_OPTIONS. Unknown key attributes are the caller's to refuse. */
export function decodeKeys(attrs: Map<number, Attr>): FlowerMatch {
  for (const [t, a] of attrs) {
    const why = UNMODELLED[t];
    if (why) throw new VpfError(Errno.EOPNOTSUPP, `${why} is not supported by vpf`, why);
    void a;
  }
  const match: FlowerMatch = {};
  const m = match as Record<string, unknown>;
  for (const k of SCALARS) {
    if (k.mask) {
      const v = decodeMasked(attrs, k.attr, k.mask, k.wire, k.name);
      if (v) m[k.field] = v;
    } else {
      const a = attrs.get(k.attr);
      if (a) m[k.field] = decodeValue(a, k.wire, k.name);
    }
  }
  const indev = attrs.get(F.INDEV);
  if (indev) match.indev = read.string(indev, 'TCA_FLOWER_INDEV', 15);
  for (const ip of IP_ATTRS) {
    const v4 = decodeMasked(attrs, ip.v4, ip.v4 + 1, 'ip4', `TCA_FLOWER_KEY_IPV4_${ip.name}`);
    const v6 = decodeMasked(attrs, ip.v6, ip.v6 + 1, 'ip6', `TCA_FLOWER_KEY_IPV6_${ip.name}`);
    if (v4 && v6) throw new VpfError(Errno.EINVAL, `both IPv4 and IPv6 ${ip.name} addresses given`);
    if (v4 ?? v6) m[ip.field] = v4 ?? v6;
  }
  // Ports: the attribute family must agree with ip_proto, or the kernel ignores the key (fl_set_key);
  // silently ignoring a key the guest asked for is worse than refusing it.
  for (const p of PORT_ATTRS) {
    const src = decodeMasked(attrs, p.src, p.srcMask, 'be16', `TCA_FLOWER_KEY_${p.p}_SRC`);
    const dst = decodeMasked(attrs, p.dst, p.dstMask, 'be16', `TCA_FLOWER_KEY_${p.p}_DST`);
    if ((src || dst) && match.ipProto !== p.proto) {
      throw new VpfError(Errno.EINVAL, `${p.p} ports need ip_proto ${p.p.toLowerCase()}`, `TCA_FLOWER_KEY_${p.p}_${src ? 'SRC' : 'DST'}`);
    }
    if (src) match.srcPort = src as Masked<number>;
    if (dst) match.dstPort = dst as Masked<number>;
  }
  for (const i of ICMP_ATTRS) {
    const type = decodeMasked(attrs, i.type, i.type + 1, 'u8', `TCA_FLOWER_KEY_${i.p}_TYPE`);
    const code = decodeMasked(attrs, i.code, i.code + 1, 'u8', `TCA_FLOWER_KEY_${i.p}_CODE`);
    if ((type || code) && match.ipProto !== i.proto) {
      throw new VpfError(Errno.EINVAL, `${i.p} type/code need ip_proto ${i.proto === 1 ? 'icmp' : 'icmpv6'}`, `TCA_FLOWER_KEY_${i.p}_TYPE`);
    }
    if (type) match.icmpType = type as Masked<number>;
    if (code) match.icmpCode = code as Masked<number>;
  }
  const range = (min: number, max: number, name: string) => {
    const lo = attrs.get(min), hi = attrs.get(max);
    if (!lo && !hi) return undefined;
    if (!lo || !hi) throw new VpfError(Errno.EINVAL, `${name}: both min and max are required`, name);
    return { min: read.be16(lo, `${name}_MIN`), max: read.be16(hi, `${name}_MAX`) };
  };
  const sr = range(F.KEY_PORT_SRC_MIN, F.KEY_PORT_SRC_MAX, 'TCA_FLOWER_KEY_PORT_SRC');
  const dr = range(F.KEY_PORT_DST_MIN, F.KEY_PORT_DST_MAX, 'TCA_FLOWER_KEY_PORT_DST');
  if (sr) match.srcPortRange = sr;
  if (dr) match.dstPortRange = dr;
  const enc = decodeEncOpts(attrs);
  if (enc) match.encOpts = enc;
  return match;
}

function maskIsAllOnes(wire: Wire, mask: number | string): boolean {
  return mask === ALL_ONES[wire];
}

/**
 * Encodes the match in iproute2's attribute order where it matters for byte
 * equality (f_flower.c flower_parse_opt emits keys in command-line order; we
 * use a fixed order and compare decoded rules, not bytes, except for simple
 * rules). A mask equal to all ones is omitted, as iproute2 omits it for exact keys.
 */
export function encodeKeys(w: AttrWriter, match: FlowerMatch): void {
  const m = match as Record<string, unknown>;
  if (match.indev !== undefined) w.string(F.INDEV, match.indev);
  for (const k of SCALARS) {
    const v = m[k.field];
    if (v === undefined) continue;
    if (k.mask) {
      const mv = v as Masked<number | string>;
      encodeValue(w, k.attr, k.wire, mv.value);
      // Flower stores an absent mask as all ones; a few keys always carry their mask on the wire
      // (iproute2 sends ip_flags, ct_* and tcp_flags masks unconditionally).
      if (!maskIsAllOnes(k.wire, mv.mask) || ALWAYS_MASK.has(k.attr)) encodeValue(w, k.mask, k.wire, mv.mask);
    } else encodeValue(w, k.attr, k.wire, v as number | string);
  }
  for (const ip of IP_ATTRS) {
    const v = m[ip.field] as Masked<string> | undefined;
    if (!v) continue;
    const six = ipFamily(v.value) === 6;
    const wire: Wire = six ? 'ip6' : 'ip4';
    const attr = six ? ip.v6 : ip.v4;
    encodeValue(w, attr, wire, v.value);
    encodeValue(w, attr + 1, wire, v.mask);
  }
  const ports = l4PortAttrs(match.ipProto);
  if ((match.srcPort || match.dstPort) && !ports) throw new VpfError(Errno.EINVAL, 'ports need ip_proto tcp, udp or sctp');
  if (ports && match.srcPort) {
    w.be16(ports.src, match.srcPort.value);
    if (match.srcPort.mask !== 0xffff) w.be16(ports.srcMask, match.srcPort.mask);
  }
  if (ports && match.dstPort) {
    w.be16(ports.dst, match.dstPort.value);
    if (match.dstPort.mask !== 0xffff) w.be16(ports.dstMask, match.dstPort.mask);
  }
  if (match.icmpType || match.icmpCode) {
    const i = ICMP_ATTRS.find((x) => x.proto === match.ipProto);
    if (!i) throw new VpfError(Errno.EINVAL, 'icmp type/code need ip_proto icmp or icmpv6');
    if (match.icmpType) {
      w.u8(i.type, match.icmpType.value);
      if (match.icmpType.mask !== 0xff) w.u8(i.type + 1, match.icmpType.mask);
    }
    if (match.icmpCode) {
      w.u8(i.code, match.icmpCode.value);
      if (match.icmpCode.mask !== 0xff) w.u8(i.code + 1, match.icmpCode.mask);
    }
  }
  if (match.srcPortRange) {
    w.be16(F.KEY_PORT_SRC_MIN, match.srcPortRange.min);
    w.be16(F.KEY_PORT_SRC_MAX, match.srcPortRange.max);
  }
  if (match.dstPortRange) {
    w.be16(F.KEY_PORT_DST_MIN, match.dstPortRange.min);
    w.be16(F.KEY_PORT_DST_MAX, match.dstPortRange.max);
  }
  if (match.encOpts) {
    const opts = (which: 'value' | 'mask') => (x: AttrWriter) => {
      for (const g of match.encOpts!.geneve?.[which] ?? []) {
        x.nest(ENC_OPT_GENEVE, (y) => {
          y.be16(GENEVE_CLASS, g.class).u8(GENEVE_TYPE, g.type).raw(GENEVE_DATA, Buffer.from(hexToBytes(g.data)));
        }, true);
      }
      if (match.encOpts!.vxlanGbp) x.nest(ENC_OPT_VXLAN, (y) => y.u32(VXLAN_GBP, match.encOpts!.vxlanGbp![which]), true);
    };
    w.nest(F.KEY_ENC_OPTS, opts('value'), true);
    w.nest(F.KEY_ENC_OPTS_MASK, opts('mask'), true);
  }
}

const ALWAYS_MASK = new Set<number>([F.KEY_FLAGS, F.KEY_CT_STATE, F.KEY_CT_ZONE, F.KEY_CT_MARK, F.KEY_CT_LABELS, F.KEY_TCP_FLAGS]);

export { UNMODELLED };

// --- dump side: cls_flower.c fl_dump_key ---

const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;
const isVlanTpid = (t: number | undefined) => t === ETH_P_8021Q || t === ETH_P_8021AD;
/** net/vxlan.h VXLAN_GBP_MASK: fl_set_vxlan_opt keeps only these bits of the GBP value and mask. */
const VXLAN_GBP_MASK = 0x0048ffff;

/**
 * The ethertype flower keeps in key.basic.n_proto: the innermost one
 * (fl_set_key: a VLAN TPID in ETH_TYPE moves to the VLAN key, and the
 * VLAN_ETH_TYPE, or CVLAN_ETH_TYPE under two tags, becomes n_proto).
 */
export function innerEthType(m: FlowerMatch): number | undefined {
  if (!isVlanTpid(m.ethType)) return m.ethType;
  if (!isVlanTpid(m.vlanEthType)) return m.vlanEthType;
  return m.cvlanEthType;
}

/** fl_dump_key_val: nothing when the mask is zero, else the value and (when the key has one) the mask. */
function dumpVal(w: AttrWriter, attr: number, mask: number | undefined, wire: Wire, v: Masked<number | string>): void {
  if (isZero(wire, v.mask)) return;
  encodeValue(w, attr, wire, v.value);
  if (mask !== undefined) encodeValue(w, mask, wire, v.mask);
}

function isZero(wire: Wire, v: number | string): boolean {
  if (typeof v === 'number') return v === 0;
  if (wire === 'label') return /^0*$/.test(v);
  return Buffer.from(wire === 'mac' ? macToBytes(v) : ipToBytes(v)).every((b) => b === 0);
}

/**
 * The match keys of a dump, in the order and form fl_dump_key fills them:
 * masks always, keys with an all-zero mask left out, the inner ethertype in
 * TCA_FLOWER_KEY_ETH_TYPE, protocol-dependent keys only under their protocol.
 */
export function encodeKeysDump(w: AttrWriter, m: FlowerMatch): void {
  if (m.indev !== undefined) w.string(F.INDEV, m.indev);
  if (m.dstMac) dumpVal(w, F.KEY_ETH_DST, F.KEY_ETH_DST + 1, 'mac', m.dstMac);
  if (m.srcMac) dumpVal(w, F.KEY_ETH_SRC, F.KEY_ETH_SRC + 1, 'mac', m.srcMac);
  const nProto = innerEthType(m);
  if (nProto !== undefined) w.be16(F.KEY_ETH_TYPE, nProto);
  if (m.numOfVlans !== undefined) w.u8(F.KEY_NUM_OF_VLANS, m.numOfVlans);
  // fl_dump_key_mpls: ttl, tc, label, bos.
  if (m.mplsTtl !== undefined) w.u8(F.KEY_MPLS_TTL, m.mplsTtl);
  if (m.mplsTc !== undefined) w.u8(F.KEY_MPLS_TC, m.mplsTc);
  if (m.mplsLabel !== undefined) w.u32(F.KEY_MPLS_LABEL, m.mplsLabel);
  if (m.mplsBos !== undefined) w.u8(F.KEY_MPLS_BOS, m.mplsBos);
  const vlan = isVlanTpid(m.ethType);
  if (vlan) {
    if (m.vlanId !== undefined) w.u16(F.KEY_VLAN_ID, m.vlanId);
    if (m.vlanPrio !== undefined) w.u8(F.KEY_VLAN_PRIO, m.vlanPrio);
  }
  const twoTags = vlan && isVlanTpid(m.vlanEthType);
  if (twoTags) {
    if (m.cvlanId !== undefined) w.u16(F.KEY_CVLAN_ID, m.cvlanId);
    if (m.cvlanPrio !== undefined) w.u8(F.KEY_CVLAN_PRIO, m.cvlanPrio);
    w.be16(F.KEY_VLAN_ETH_TYPE, m.vlanEthType!);
  }
  if (nProto !== undefined && vlan) w.be16(twoTags ? F.KEY_CVLAN_ETH_TYPE : F.KEY_VLAN_ETH_TYPE, nProto);
  const ipish = nProto === 0x0800 || nProto === 0x86dd;
  if (ipish) {
    if (m.ipProto !== undefined) w.u8(F.KEY_IP_PROTO, m.ipProto);
    if (m.ipTos) dumpVal(w, F.KEY_IP_TOS, F.KEY_IP_TOS + 1, 'u8', m.ipTos);
    if (m.ipTtl) dumpVal(w, F.KEY_IP_TTL, F.KEY_IP_TTL + 1, 'u8', m.ipTtl);
  }
  dumpAddrs(w, m.srcIp, m.dstIp, F.KEY_IPV4_SRC, F.KEY_IPV6_SRC, F.KEY_IPV4_DST, F.KEY_IPV6_DST);
  const ports = l4PortAttrs(m.ipProto);
  if (ports) {
    if (m.srcPort) dumpVal(w, ports.src, ports.srcMask, 'be16', m.srcPort);
    if (m.dstPort) dumpVal(w, ports.dst, ports.dstMask, 'be16', m.dstPort);
    if (m.ipProto === IpProto.TCP && m.tcpFlags) dumpVal(w, F.KEY_TCP_FLAGS, F.KEY_TCP_FLAGS + 1, 'be16', m.tcpFlags);
  } else {
    const icmp = ICMP_ATTRS.find((i) => i.proto === m.ipProto && nProto === (i.proto === IpProto.ICMP ? 0x0800 : 0x86dd));
    if (icmp) {
      if (m.icmpType) dumpVal(w, icmp.type, icmp.type + 1, 'u8', m.icmpType);
      if (m.icmpCode) dumpVal(w, icmp.code, icmp.code + 1, 'u8', m.icmpCode);
    } else if (nProto === 0x0806 || nProto === 0x8035) {
      if (m.arpSip) dumpVal(w, F.KEY_ARP_SIP, F.KEY_ARP_SIP + 1, 'ip4', m.arpSip);
      if (m.arpTip) dumpVal(w, F.KEY_ARP_TIP, F.KEY_ARP_TIP + 1, 'ip4', m.arpTip);
      if (m.arpOp) dumpVal(w, F.KEY_ARP_OP, F.KEY_ARP_OP + 1, 'u8', m.arpOp);
      if (m.arpSha) dumpVal(w, F.KEY_ARP_SHA, F.KEY_ARP_SHA + 1, 'mac', m.arpSha);
      if (m.arpTha) dumpVal(w, F.KEY_ARP_THA, F.KEY_ARP_THA + 1, 'mac', m.arpTha);
    }
  }
  if (ports) {
    // fl_dump_key_port_range: destination range first.
    if (m.dstPortRange) w.be16(F.KEY_PORT_DST_MIN, m.dstPortRange.min).be16(F.KEY_PORT_DST_MAX, m.dstPortRange.max);
    if (m.srcPortRange) w.be16(F.KEY_PORT_SRC_MIN, m.srcPortRange.min).be16(F.KEY_PORT_SRC_MAX, m.srcPortRange.max);
  }
  dumpAddrs(w, m.encSrcIp, m.encDstIp, F.KEY_ENC_IPV4_SRC, F.KEY_ENC_IPV6_SRC, F.KEY_ENC_IPV4_DST, F.KEY_ENC_IPV6_DST);
  if (m.encKeyId !== undefined) w.be32(F.KEY_ENC_KEY_ID, m.encKeyId);
  if (m.encDstPort) dumpVal(w, F.KEY_ENC_UDP_DST_PORT, F.KEY_ENC_UDP_DST_PORT + 1, 'be16', m.encDstPort);
  if (m.encTos) dumpVal(w, F.KEY_ENC_IP_TOS, F.KEY_ENC_IP_TOS + 1, 'u8', m.encTos);
  if (m.encTtl) dumpVal(w, F.KEY_ENC_IP_TTL, F.KEY_ENC_IP_TTL + 1, 'u8', m.encTtl);
  if (m.encOpts) dumpEncOpts(w, m.encOpts);
  if (m.ctState) dumpVal(w, F.KEY_CT_STATE, F.KEY_CT_STATE + 1, 'u16', m.ctState);
  if (m.ctZone) dumpVal(w, F.KEY_CT_ZONE, F.KEY_CT_ZONE + 1, 'u16', m.ctZone);
  if (m.ctMark) dumpVal(w, F.KEY_CT_MARK, F.KEY_CT_MARK + 1, 'u32', m.ctMark);
  if (m.ctLabel) dumpVal(w, F.KEY_CT_LABELS, F.KEY_CT_LABELS + 1, 'label', m.ctLabel);
  if (m.ipFlags) dumpVal(w, F.KEY_FLAGS, F.KEY_FLAGS + 1, 'be32', m.ipFlags);
}

/** IPv4 or IPv6 source and destination (+ masks); the family is the filter's address type (key.control.addr_type). */
function dumpAddrs(w: AttrWriter, src: Masked<string> | undefined, dst: Masked<string> | undefined, v4src: number, v6src: number, v4dst: number, v6dst: number): void {
  // One address type per filter: a zero-masked address is no key at all, the other one sets the family.
  const keyed = [src, dst].find((a) => a && !isZero(ipFamily(a.value) === 6 ? 'ip6' : 'ip4', a.mask));
  if (!keyed) return;
  const six = ipFamily(keyed.value) === 6;
  const wire: Wire = six ? 'ip6' : 'ip4';
  const same = (a: Masked<string> | undefined) => a && (ipFamily(a.value) === 6) === six;
  if (same(src)) dumpVal(w, six ? v6src : v4src, (six ? v6src : v4src) + 1, wire, src!);
  if (same(dst)) dumpVal(w, six ? v6dst : v4dst, (six ? v6dst : v4dst) + 1, wire, dst!);
}

/** fl_dump_key_enc_opt: the options, then their masks, each one plain nest of one tunnel type. */
function dumpEncOpts(w: AttrWriter, o: NonNullable<FlowerMatch['encOpts']>): void {
  const one = (attr: number, which: 'value' | 'mask') => {
    if (o.geneve?.[which].length) {
      w.nest(attr, (x) => x.nest(ENC_OPT_GENEVE, (y) => {
        for (const g of o.geneve![which]) y.be16(GENEVE_CLASS, g.class).u8(GENEVE_TYPE, g.type).raw(GENEVE_DATA, Buffer.from(hexToBytes(g.data)));
      }));
    } else if (o.vxlanGbp) {
      w.nest(attr, (x) => x.nest(ENC_OPT_VXLAN, (y) => y.u32(VXLAN_GBP, (o.vxlanGbp![which] & VXLAN_GBP_MASK) >>> 0)));
    }
  };
  one(F.KEY_ENC_OPTS, 'value');
  one(F.KEY_ENC_OPTS_MASK, 'mask');
}
