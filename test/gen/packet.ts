// fast-check packets whose fields come from small pools, so random rules built
// from the same pools both hit and miss them.
import fc from 'fast-check';
import type { Packet, VlanTag } from '../../rules/packet.js';
import { REPS } from './rule.js';

export const MACS = ['02:00:00:00:00:01', '02:00:00:00:00:02', 'ff:ff:ff:ff:ff:ff'];
export const IP4 = ['10.0.0.1', '10.0.0.2', '192.168.1.1'];
export const IP6 = ['2001:db8::1', '2001:db8::2'];
export const PORTS = [53, 80, 1000, 1999, 2000];

export interface PacketOptions {
  /** Every tagged frame carries this outer TPID (a VM's declared outer TPID); default: 0x8100 or 0x88a8. */
  outerTpid?: number;
}

export function arbPacket(opts: PacketOptions = {}): fc.Arbitrary<Packet> {
  const tpids = opts.outerTpid !== undefined ? [opts.outerTpid] : [0x8100, 0x88a8];
  const tag = (tpid: fc.Arbitrary<number>): fc.Arbitrary<VlanTag> => fc.tuple(tpid, fc.constantFrom(5, 100), fc.integer({ min: 0, max: 7 })).map(([t, vid, pcp]) => ({ tpid: t, vid, pcp }));
  const base = fc.record({
    inDev: fc.constantFrom(...REPS),
    dstMac: fc.constantFrom(...MACS),
    srcMac: fc.constantFrom(...MACS),
    vlans: fc.oneof(
      fc.constant<VlanTag[]>([]),
      fc.constant<VlanTag[]>([]),
      tag(fc.constantFrom(...tpids)).map((t) => [t]),
      // Double-tagged: QinQ (802.1ad over 802.1Q) or stacked 802.1Q; OVS with vlan-limit 1 sees the inner TPID as dl_type.
      fc.tuple(tag(fc.constantFrom(...tpids)), tag(fc.constantFrom(0x8100, 0x88a8))).map(([o, i]) => [o, i]),
    ),
    ct: fc.record({ state: fc.constantFrom(0, 0x08 | 0x01, 0x08 | 0x02, 0x08 | 0x02 | 0x20), zone: fc.constantFrom(0, 1, 5), mark: fc.constantFrom(0, 0x10), label: fc.constant('0'.repeat(32)) }),
  });
  const ipv = fc.record({
    version: fc.constantFrom(4 as const, 6 as const),
    proto: fc.constantFrom(6, 17, 1, 58, 132),
    tos: fc.constantFrom(0, 0x10, 0x28),
    ttl: fc.constantFrom(1, 64, 255),
    frag: fc.constantFrom('no' as const, 'no' as const, 'first' as const, 'later' as const),
    i: fc.nat(1),
    j: fc.nat(1),
    sport: fc.constantFrom(...PORTS),
    dport: fc.constantFrom(...PORTS),
    flags: fc.constantFrom(0x02, 0x10, 0x12),
  });
  return fc.tuple(base, fc.constantFrom('ip', 'ip', 'arp', 'other'), ipv).map(([b, kind, x]): Packet => {
    const p: Packet = { ...b, ethType: 0x0800, mark: 0, priority: 0 };
    if (kind === 'arp') return { ...p, ethType: 0x0806, arp: { op: 1, sip: IP4[x.i]!, tip: IP4[x.j]!, sha: b.srcMac, tha: '00:00:00:00:00:00' } };
    if (kind === 'other') return { ...p, ethType: 0x88cc };
    const v6 = x.version === 6;
    const proto = v6 && x.proto === 1 ? 58 : !v6 && x.proto === 58 ? 1 : x.proto;
    p.ethType = v6 ? 0x86dd : 0x0800;
    p.ip = { version: x.version, src: (v6 ? IP6 : IP4)[x.i]!, dst: (v6 ? IP6 : IP4)[x.j]!, proto, tos: x.tos, ttl: x.ttl, frag: x.frag };
    if (proto === 6 || proto === 17 || proto === 132) p.l4 = { src: x.sport, dst: x.dport };
    if (proto === 6) p.tcpFlags = x.flags;
    if (proto === 1 || proto === 58) p.icmp = { type: 8, code: 0 };
    return p;
  });
}
