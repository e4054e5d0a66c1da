// Packets of the reference model (rules/packet.ts) as real Ethernet frames for
// the offload VM, and frames that came out read back into the fields the tier
// compares. VLAN tags are written in the frame (outermost first); the guest's
// stack moves the outer one into metadata before tc, as a NIC with rx-vlan offload does.
import { bytesToHex, bytesToIp, hexToBytes, ipToBytes, macToBytes, bytesToMac } from '../../rules/addr.js';
import type { IcmpInner, Packet } from '../../rules/packet.js';

const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const u32 = (n: number) => [...u16(Math.floor(n / 0x10000) & 0xffff), ...u16(n & 0xffff)];

function csum(b: number[]): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) + (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}

/** What an ICMP error carries (RFC 792, RFC 4443): the offending packet's IP header and its first 8 bytes (UDP). */
function carried(version: 4 | 6, i: IcmpInner): number[] {
  const udpHead = [...u16(i.sport), ...u16(i.dport), ...u16(16), 0, 0];
  if (version === 6) return [0x60, 0, 0, 0, ...u16(16), i.proto, 64, ...ipToBytes(i.src), ...ipToBytes(i.dst), ...udpHead];
  const h = [0x45, 0, ...u16(36), 0, 1, 0, 0, 64, i.proto, 0, 0, ...ipToBytes(i.src), ...ipToBytes(i.dst)];
  const c = csum(h);
  h[10] = c >> 8;
  h[11] = c & 0xff;
  return [...h, ...udpHead];
}

/** L4 header (+ a few payload bytes); fragments after the first carry payload only. */
function l4(p: Packet): number[] {
  const ip = p.ip!;
  const pay = [...Buffer.from('vpf-offl')];
  if (ip.frag === 'later') return [...pay, ...pay];
  const sp = p.l4?.src ?? 0, dp = p.l4?.dst ?? 0;
  switch (ip.proto) {
    case 6: {
      const seg = p.tcpSeg ?? { seq: 1, ack: 0, window: 8192, dataLen: pay.length };
      const data = Array.from({ length: seg.dataLen }, (_, i) => pay[i % pay.length]!);
      return [...u16(sp), ...u16(dp), ...u32(seg.seq), ...u32(seg.ack), 0x50, p.tcpFlags ?? 0x02, ...u16(seg.window), 0, 0, 0, 0, ...data];
    }
    case 17: return [...u16(sp), ...u16(dp), ...u16(8 + pay.length), 0, 0, ...pay];
    case 132: return [...u16(sp), ...u16(dp), 0, 0, 0, 1, 0, 0, 0, 0, ...pay];
    case 1: case 58: return p.icmp?.inner ? [p.icmp.type, p.icmp.code, 0, 0, 0, 0, 0, 0, ...carried(ip.version, p.icmp.inner)] : [p.icmp?.type ?? 8, p.icmp?.code ?? 0, 0, 0, 0, 1, 0, 1, ...pay];
    default: return pay;
  }
}

/**
 * The TCP, ICMP/ICMPv6 (or IPv6 UDP) checksum, written into `body`: conntrack takes a segment with a wrong one as
 * invalid (nf_conntrack_checksum; tcp_error, icmp_error), so no connection, commit or NAT would happen. IPv4 UDP
 * keeps 0, "no checksum". SCTP's CRC32c is left 0: the model's packets carry no INIT chunk, invalid anyway
 * (rules/classify/conntrack.ts). Whole segments only.
 */
function l4Checksum(p: Packet, body: number[]): void {
  const ip = p.ip!;
  const at = ip.proto === 6 ? 16 : ip.proto === 17 && ip.version === 6 ? 6 : ip.proto === 1 || ip.proto === 58 ? 2 : -1;
  if (at < 0 || ip.frag !== 'no') return;
  // ICMP (IPv4) sums the message alone; the others a pseudo-header first
  const pseudo = ip.proto === 1 && ip.version === 4 ? [] : ip.version === 4 ? [...ipToBytes(ip.src), ...ipToBytes(ip.dst), 0, ip.proto, ...u16(body.length)] : [...ipToBytes(ip.src), ...ipToBytes(ip.dst), 0, 0, ...u16(body.length), 0, 0, 0, ip.proto];
  const c = csum([...pseudo, ...body]);
  body[at] = c >> 8;
  body[at + 1] = c & 0xff;
}

export function packetToHex(p: Packet): string {
  const b: number[] = [...macToBytes(p.dstMac), ...macToBytes(p.srcMac)];
  for (const v of p.vlans) b.push(...u16(v.tpid), ...u16(((v.pcp & 7) << 13) | (v.vid & 0xfff)));
  b.push(...u16(p.ethType));
  if (p.ip?.version === 4) {
    const body = l4(p);
    l4Checksum(p, body);
    // flags+offset: MF for a first fragment, offset 8 x 8 bytes for a later one
    const frag = p.ip.frag === 'first' ? 0x2000 : p.ip.frag === 'later' ? 8 : 0;
    const h = [0x45, p.ip.tos, ...u16(20 + body.length), 0, 1, ...u16(frag), p.ip.ttl, p.ip.proto, 0, 0, ...ipToBytes(p.ip.src), ...ipToBytes(p.ip.dst)];
    const c = csum(h);
    h[10] = c >> 8;
    h[11] = c & 0xff;
    b.push(...h, ...body);
  } else if (p.ip?.version === 6) {
    let body = l4(p);
    l4Checksum(p, body);
    let nh = p.ip.proto;
    if (p.ip.frag !== 'no') {
      // RFC 8200 fragment header: offset in 8-byte units, M flag
      const off = p.ip.frag === 'first' ? 1 : 8 << 3;
      body = [nh, 0, ...u16(off), 0, 0, 0, 1, ...body];
      nh = 44;
    }
    b.push(0x60 | (p.ip.tos >> 4), (p.ip.tos & 0xf) << 4, 0, 0, ...u16(body.length), nh, p.ip.ttl, ...ipToBytes(p.ip.src), ...ipToBytes(p.ip.dst), ...body);
  } else if (p.arp) {
    b.push(0, 1, 8, 0, 6, 4, ...u16(p.arp.op), ...macToBytes(p.arp.sha), ...ipToBytes(p.arp.sip), ...macToBytes(p.arp.tha), ...ipToBytes(p.arp.tip));
  } else b.push(...Buffer.from('vpf-offload-frame'));
  while (b.length < 60) b.push(0);
  return bytesToHex(Uint8Array.from(b));
}

/** What the tier compares of a frame: addresses, tags, the IP fields rules rewrite, L4 ports of unfragmented packets. */
export interface FrameView {
  port: string;
  dstMac: string;
  srcMac: string;
  /** tpid/vid/pcp, outermost first */
  vlans: string;
  ethType: number;
  ip: string;
  l4: string;
}

export function packetView(port: string, p: Packet): FrameView {
  return {
    port,
    dstMac: p.dstMac,
    srcMac: p.srcMac,
    vlans: p.vlans.map((v) => `${v.tpid.toString(16)}/${v.vid}/${v.pcp}`).join(','),
    ethType: p.ethType,
    ip: p.ip ? `${p.ip.src}>${p.ip.dst} ttl ${p.ip.ttl} tos ${p.ip.tos}` : '',
    l4: p.l4 && p.ip?.frag === 'no' && [6, 17, 132].includes(p.ip.proto) ? `${p.l4.src}>${p.l4.dst}` : '',
  };
}

export function frameView(port: string, hex: string): FrameView {
  const b = hexToBytes(hex);
  const at = (i: number) => (b[i]! << 8) | b[i + 1]!;
  const vlans: string[] = [];
  let o = 12;
  while (o + 4 <= b.length && (at(o) === 0x8100 || at(o) === 0x88a8)) {
    vlans.push(`${at(o).toString(16)}/${at(o + 2) & 0xfff}/${at(o + 2) >> 13}`);
    o += 4;
  }
  const ethType = at(o);
  o += 2;
  let ip = '', ports = '';
  if (ethType === 0x0800) {
    const ihl = (b[o]! & 0xf) * 4, frag = at(o + 6) & 0x3fff;
    ip = `${bytesToIp(b.subarray(o + 12, o + 16))}>${bytesToIp(b.subarray(o + 16, o + 20))} ttl ${b[o + 8]} tos ${b[o + 1]}`;
    if (!frag && [6, 17, 132].includes(b[o + 9]!)) ports = `${at(o + ihl)}>${at(o + ihl + 2)}`;
  } else if (ethType === 0x86dd) {
    const tos = ((b[o]! & 0xf) << 4) | (b[o + 1]! >> 4);
    ip = `${bytesToIp(b.subarray(o + 8, o + 24))}>${bytesToIp(b.subarray(o + 24, o + 40))} ttl ${b[o + 7]} tos ${tos}`;
    if ([6, 17, 132].includes(b[o + 6]!)) ports = `${at(o + 40)}>${at(o + 42)}`;
  }
  return { port, dstMac: bytesToMac(b.subarray(0, 6)), srcMac: bytesToMac(b.subarray(6, 12)), vlans: vlans.join(','), ethType, ip, l4: ports };
}

/** A UDP frame vf0 sends to `dst` (10.0.0.1:1000 -> dst:80, no conntrack state): the vpfd and guest-OVS tiers' probe. */
export function udpFromVf0(dst: string): Packet {
  return {
    inDev: 'vf0', dstMac: '02:00:00:00:00:02', srcMac: '02:00:00:00:00:01', vlans: [], mark: 0, priority: 0,
    ct: { state: 0, zone: 0, mark: 0, label: '0'.repeat(32) },
    ethType: 0x0800, ip: { version: 4, src: '10.0.0.1', dst, proto: 17, tos: 0, ttl: 64, frag: 'no' }, l4: { src: 1000, dst: 80 },
  };
}
