// A model packet (rules/packet.ts) as the Ethernet frame a VF would send: what
// the offload checks inject into a real datapath. Only what the flow
// dissector and OVS's flow extraction read is filled in; checksums are right
// for IPv4 headers and left 0 elsewhere (neither flower nor OVS checks them).
import { ipToBytes, macToBytes } from '../../../rules/addr.js';
import type { Packet } from '../../../rules/packet.js';

const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const u32 = (n: number) => [...u16((n >>> 16) & 0xffff), ...u16(n & 0xffff)];

function ipv4Checksum(h: number[]): number {
  let s = 0;
  for (let i = 0; i < h.length; i += 2) s += (h[i]! << 8) | h[i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** The L4 header (or payload of a later fragment) after the IP header. */
function l4Bytes(p: Packet): number[] {
  const ip = p.ip!;
  if (ip.frag === 'later') return new Array(16).fill(0xab);
  const src = p.l4?.src ?? 0, dst = p.l4?.dst ?? 0;
  switch (ip.proto) {
    case 6:
      return [...u16(src), ...u16(dst), ...u32(1), ...u32(0), 0x50 | ((p.tcpFlags ?? 0) >> 8), (p.tcpFlags ?? 0) & 0xff, ...u16(8192), 0, 0, 0, 0];
    case 17:
      return [...u16(src), ...u16(dst), ...u16(16), 0, 0, ...new Array(8).fill(0)];
    case 132:
      return [...u16(src), ...u16(dst), ...u32(1), ...u32(0)];
    case 1:
    case 58:
      return [p.icmp?.type ?? 8, p.icmp?.code ?? 0, 0, 0, 0, 1, 0, 1];
    default:
      return new Array(8).fill(0);
  }
}

function ipBytes(p: Packet): number[] {
  const ip = p.ip!;
  const l4 = l4Bytes(p);
  if (ip.version === 4) {
    // flags/offset: first fragment = MF at offset 0; a later one sits at offset 8 * 100.
    const frag = ip.frag === 'first' ? 0x2000 : ip.frag === 'later' ? 100 : 0;
    const h = [0x45, ip.tos, ...u16(20 + l4.length), ...u16(1), ...u16(frag), ip.ttl, ip.proto, 0, 0, ...ipToBytes(ip.src), ...ipToBytes(ip.dst)];
    const c = ipv4Checksum(h);
    h[10] = c >> 8;
    h[11] = c & 0xff;
    return [...h, ...l4];
  }
  // IPv6: a fragment carries a Fragment header (next header 44) in front of the upper protocol.
  const fragHdr = ip.frag === 'no' ? [] : [ip.proto, 0, ...u16(ip.frag === 'first' ? 1 : 100 << 3), ...u32(1)];
  const next = ip.frag === 'no' ? ip.proto : 44;
  const len = fragHdr.length + l4.length;
  return [0x60 | (ip.tos >> 4), ((ip.tos & 0xf) << 4) & 0xff, 0, 0, ...u16(len), next, ip.ttl, ...ipToBytes(ip.src), ...ipToBytes(ip.dst), ...fragHdr, ...l4];
}

export function encodeFrame(p: Packet): Buffer {
  const b: number[] = [...macToBytes(p.dstMac), ...macToBytes(p.srcMac)];
  for (const v of p.vlans) b.push(...u16(v.tpid), ...u16((v.pcp << 13) | v.vid));
  b.push(...u16(p.ethType));
  if (p.mpls?.length) p.mpls.forEach((l, i) => b.push(...u32(((l.label << 12) | (l.tc << 9) | ((i === p.mpls!.length - 1 ? 1 : 0) << 8) | l.ttl) >>> 0)));
  if (p.ip) b.push(...ipBytes(p));
  else if (p.arp) {
    const a = p.arp;
    b.push(...u16(1), ...u16(0x0800), 6, 4, ...u16(a.op), ...macToBytes(a.sha), ...ipToBytes(a.sip), ...macToBytes(a.tha), ...ipToBytes(a.tip));
  }
  while (b.length < 60) b.push(0);
  return Buffer.from(b);
}
