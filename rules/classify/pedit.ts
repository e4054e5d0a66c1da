// act_pedit.c on the headers the packet model has: each key rewrites the
// 32-bit word at header + offset. The kernel reads that word as a native u32
// (x86: little-endian) and for ADD computes (*ptr + val) & ~mask, so a carry
// never leaves the field the mask frees; SET is (*ptr & mask) ^ val.
import { bytesToIp, bytesToMac, ipToBytes, macToBytes } from '../addr.js';
import type { PeditKey } from '../model.js';
import type { Packet } from '../packet.js';

type Header = { bytes: Uint8Array; store(b: Uint8Array): void } | undefined;

function header(p: Packet, htype: PeditKey['htype']): Header {
  switch (htype) {
    case 'eth': {
      const b = new Uint8Array(16);
      b.set(macToBytes(p.dstMac), 0);
      b.set(macToBytes(p.srcMac), 6);
      const type = p.vlans[0]?.tpid ?? p.ethType;
      b[12] = type >> 8;
      b[13] = type & 0xff;
      return {
        bytes: b,
        store: (x) => {
          p.dstMac = bytesToMac(x.subarray(0, 6));
          p.srcMac = bytesToMac(x.subarray(6, 12));
        },
      };
    }
    case 'ip4': {
      if (p.ip?.version !== 4) return undefined;
      const ip = p.ip;
      const b = new Uint8Array(20);
      b[0] = 0x45;
      b[1] = ip.tos;
      b[8] = ip.ttl;
      b[9] = ip.proto;
      b.set(ipToBytes(ip.src), 12);
      b.set(ipToBytes(ip.dst), 16);
      return {
        bytes: b,
        store: (x) => {
          ip.tos = x[1]!;
          ip.ttl = x[8]!;
          ip.src = bytesToIp(x.subarray(12, 16));
          ip.dst = bytesToIp(x.subarray(16, 20));
        },
      };
    }
    case 'ip6': {
      if (p.ip?.version !== 6) return undefined;
      const ip = p.ip;
      const b = new Uint8Array(40);
      b[0] = 0x60 | (ip.tos >> 4);
      b[1] = (ip.tos & 0xf) << 4;
      b[6] = ip.proto;
      b[7] = ip.ttl;
      b.set(ipToBytes(ip.src), 8);
      b.set(ipToBytes(ip.dst), 24);
      return {
        bytes: b,
        store: (x) => {
          ip.tos = ((x[0]! & 0xf) << 4) | (x[1]! >> 4);
          ip.ttl = x[7]!;
          ip.src = bytesToIp(x.subarray(8, 24));
          ip.dst = bytesToIp(x.subarray(24, 40));
        },
      };
    }
    case 'tcp':
    case 'udp': {
      const want = htype === 'tcp' ? 6 : 17;
      if (!p.ip || p.ip.proto !== want || !p.l4) return undefined;
      const l4 = p.l4;
      const b = new Uint8Array(8);
      b[0] = l4.src >> 8;
      b[1] = l4.src & 0xff;
      b[2] = l4.dst >> 8;
      b[3] = l4.dst & 0xff;
      return {
        bytes: b,
        store: (x) => {
          l4.src = (x[0]! << 8) | x[1]!;
          l4.dst = (x[2]! << 8) | x[3]!;
        },
      };
    }
    default:
      return undefined;
  }
}

/** Applies pedit keys in order. Keys whose header the packet lacks are skipped (the model has no bytes there). */
export function applyPedit(p: Packet, keys: PeditKey[]): void {
  for (const k of keys) {
    const h = header(p, k.htype);
    if (!h || k.offset + 4 > h.bytes.length) continue;
    const view = new DataView(h.bytes.buffer);
    // Model words are big-endian (byte 0 = first on the wire); the kernel sees them little-endian.
    const swap = (x: number) => (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
    const old = view.getUint32(k.offset, true);
    const mask = swap(k.mask), val = swap(k.value);
    const v = k.cmd === 'add' ? (old + val) & ~mask : val;
    view.setUint32(k.offset, ((old & mask) ^ v) >>> 0, true);
    h.store(h.bytes);
  }
}
