// fast-check arbitraries of VALID flower rules (they pass validateRule), covering
// every key and action of the model in forms both codecs round-trip exactly.
import fc from 'fast-check';
import { bytesToIp, bytesToMac, prefixMask } from '../../rules/addr.js';
import type { Action, Control, FlowerMatch, FlowerRule, Masked } from '../../rules/model.js';
import { EthP, IpProto } from '../../rules/model.js';
import { burstToTicks, ticksToBurst } from '../../rules/psched.js';
import { Tokens } from '../../rules/tcsyntax/lex.js';
import { parseMunge } from '../../rules/tcsyntax/pedit.js';

export const REPS = ['uplink', 'vf0', 'vf1', 'vf2', 'vf3'];
const rep = fc.constantFrom(...REPS);
const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const masked = (v: fc.Arbitrary<number>, m: fc.Arbitrary<number>, max: number) =>
  fc.tuple(v, fc.oneof(fc.constant(max), m)).map(([value, mask]): Masked<number> => ({ value, mask }));
const mac = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => bytesToMac(b));
const maskedMac = fc.tuple(mac, fc.oneof(fc.constant('ff:ff:ff:ff:ff:ff'), mac)).map(([value, mask]) => ({ value, mask }));
const ip4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => bytesToIp(b));
const ip6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => bytesToIp(b));
const maskedIp = (fam: 4 | 6) =>
  fc.tuple(fam === 4 ? ip4 : ip6, fc.integer({ min: 0, max: fam === 4 ? 32 : 128 })).map(([value, len]) => ({ value, mask: prefixMask(fam, len) }));
const hexBytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString('hex'));

const control: fc.Arbitrary<Control> = fc.oneof(
  fc.constantFrom<Control>({ kind: 'pass' }, { kind: 'drop' }, { kind: 'pipe' }, { kind: 'continue' }, { kind: 'reclassify' }, { kind: 'trap' }),
  fc.integer({ min: 0, max: 0x0fffffff }).map((chain): Control => ({ kind: 'goto', chain })),
);

const simpleControl = fc.constantFrom<Control>({ kind: 'pass' }, { kind: 'drop' }, { kind: 'pipe' }, { kind: 'continue' }, { kind: 'reclassify' });

const ctState = fc
  .record({ trk: fc.constantFrom(0, 1, 2), est: fc.constantFrom(0, 1, 2), rpl: fc.constantFrom(0, 1, 2), rel: fc.constantFrom(0, 1) })
  .map(({ trk, est, rpl, rel }) => {
    // 0 = not matched, 1 = +flag, 2 = -flag; kept valid per fl_validate_ct_state.
    let value = 0, mask = 0;
    const set = (bit: number, s: number) => {
      if (s) mask |= bit;
      if (s === 1) value |= bit;
    };
    set(8, trk === 0 && (est === 1 || rpl === 1 || rel === 1) ? 1 : trk);
    if (value & 8) {
      set(2, est);
      set(32, rpl);
      set(4, rel);
    }
    if (mask === 0) mask = 8;
    return { value, mask };
  });

/** Matches grouped by protocol so prerequisites hold. */
const ipMatch = (fam: 4 | 6): fc.Arbitrary<FlowerMatch> =>
  fc
    .record(
      {
        proto: fc.constantFrom(IpProto.TCP, IpProto.UDP, IpProto.SCTP, fam === 4 ? IpProto.ICMP : IpProto.ICMPV6, 47),
        srcIp: maskedIp(fam),
        dstIp: maskedIp(fam),
        ipTos: masked(u8, u8, 0xff),
        ipTtl: masked(u8, u8, 0xff),
        srcPort: masked(u16, u16, 0xffff),
        dstRange: fc.tuple(fc.integer({ min: 0, max: 60000 }), fc.integer({ min: 1, max: 5000 })).map(([a, d]) => ({ min: a, max: a + d })),
        tcpFlags: masked(fc.integer({ min: 0, max: 0xfff }), fc.integer({ min: 0, max: 0xfff }), 0xfff),
        icmpType: masked(u8, u8, 0xff),
        icmpCode: masked(u8, u8, 0xff),
        ipFlags: fc.constantFrom({ value: 1, mask: 1 }, { value: 0, mask: 1 }, { value: 3, mask: 3 }, { value: 1, mask: 3 }, { value: 0, mask: 2 }),
        ctState,
        ctZone: masked(u16, u16, 0xffff),
        ctMark: masked(u32, u32, 0xffffffff),
        ctLabel: fc.tuple(hexBytes(16), fc.oneof(fc.constant('f'.repeat(32)), hexBytes(16))).map(([value, mask]) => ({ value, mask })),
      },
      { requiredKeys: ['proto'] },
    )
    .map((r) => {
      const m: FlowerMatch = { ipProto: r.proto };
      if (r.srcIp) m.srcIp = r.srcIp;
      if (r.dstIp) m.dstIp = r.dstIp;
      if (r.ipTos) m.ipTos = r.ipTos;
      if (r.ipTtl) m.ipTtl = r.ipTtl;
      if (r.ipFlags) m.ipFlags = r.ipFlags;
      if (r.ctState) m.ctState = r.ctState;
      if (r.ctZone) m.ctZone = r.ctZone;
      if (r.ctMark) m.ctMark = r.ctMark;
      if (r.ctLabel) m.ctLabel = r.ctLabel;
      const l4 = r.proto === IpProto.TCP || r.proto === IpProto.UDP || r.proto === IpProto.SCTP;
      if (l4 && r.srcPort) m.srcPort = r.srcPort;
      if (l4 && r.dstRange) m.dstPortRange = r.dstRange;
      if (r.proto === IpProto.TCP && r.tcpFlags) m.tcpFlags = r.tcpFlags;
      if ((r.proto === IpProto.ICMP || r.proto === IpProto.ICMPV6) && r.icmpType) m.icmpType = r.icmpType;
      if ((r.proto === IpProto.ICMP || r.proto === IpProto.ICMPV6) && r.icmpCode) m.icmpCode = r.icmpCode;
      return m;
    });

const l2: fc.Arbitrary<FlowerMatch> = fc.record({ dstMac: maskedMac, srcMac: maskedMac }, { requiredKeys: [] });

const encMatch: fc.Arbitrary<FlowerMatch> = fc.record(
  {
    encKeyId: u32,
    encSrcIp: maskedIp(4),
    encDstIp: maskedIp(6),
    encDstPort: masked(u16, u16, 0xffff),
    encTos: masked(u8, u8, 0xff),
    encTtl: masked(u8, u8, 0xff),
    encOpts: fc.oneof(
      fc.array(fc.record({ class: u16, type: u8, data: fc.integer({ min: 1, max: 3 }).chain((n) => hexBytes(4 * n)) }), { minLength: 1, maxLength: 2 }).map((value) => ({
        geneve: { value, mask: value.map((o) => ({ class: 0xffff, type: 0xff, data: 'f'.repeat(o.data.length) })) },
      })),
      masked(u32, u32, 0xffffffff).map((vxlanGbp) => ({ vxlanGbp })),
    ),
  },
  { requiredKeys: [] },
);

/** (protocol, match) pairs that satisfy the kernel's prerequisites. */
const protoAndMatch: fc.Arbitrary<[number, FlowerMatch]> = fc.oneof(
  fc.tuple(fc.constant(EthP.IP as number), fc.tuple(ipMatch(4), l2, encMatch).map(([a, b, c]) => ({ ...b, ...a, ...c }))),
  fc.tuple(fc.constant(EthP.IPV6 as number), fc.tuple(ipMatch(6), l2).map(([a, b]) => ({ ...b, ...a }))),
  fc.tuple(
    fc.constantFrom(EthP.ARP as number, EthP.RARP as number),
    fc.record({ arpSip: maskedIp(4), arpTip: maskedIp(4), arpOp: masked(u8, u8, 0xff), arpSha: maskedMac, arpTha: maskedMac }, { requiredKeys: [] }),
  ),
  fc.tuple(
    fc.constantFrom(EthP.VLAN_8021Q as number, EthP.VLAN_8021AD as number),
    fc.record(
      // VIDs mostly from the packets' pool (test/gen/packet.ts: 5, 100), so VLAN filters meet tagged packets.
      { vlanId: fc.oneof(fc.constantFrom(5, 100), fc.constantFrom(5, 100), fc.integer({ min: 0, max: 4095 })), vlanPrio: fc.integer({ min: 0, max: 7 }), vlanEthType: fc.constantFrom(EthP.IP as number, EthP.IPV6 as number, EthP.ARP as number) },
      { requiredKeys: [] },
    ),
  ),
  fc.tuple(
    fc.constant(EthP.VLAN_8021AD as number),
    fc.record({ vlanId: fc.integer({ min: 0, max: 4095 }), cvlanId: fc.integer({ min: 0, max: 4095 }), cvlanPrio: fc.integer({ min: 0, max: 7 }), cvlanEthType: fc.constantFrom(EthP.IP as number, EthP.IPV6 as number) }).map((r) => ({
      ...r,
      vlanEthType: EthP.VLAN_8021Q as number,
    })),
  ),
  fc.tuple(
    fc.constantFrom(EthP.MPLS_UC as number, EthP.MPLS_MC as number),
    fc.record({ mplsLabel: fc.integer({ min: 0, max: 0xfffff }), mplsTc: fc.integer({ min: 0, max: 7 }), mplsBos: fc.integer({ min: 0, max: 1 }), mplsTtl: u8 }, { requiredKeys: [] }),
  ),
  fc.tuple(fc.constant(EthP.ALL as number), fc.tuple(l2, fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined })).map(([m, n]) => (n === undefined ? m : { ...m, numOfVlans: n }))),
);

const PEDIT_OPS = fc.oneof(
  fc.tuple(fc.constantFrom('src', 'dst'), ip4).map(([f, a]) => ['ip', f, 'set', a]),
  fc.constant(['ip', 'ttl', 'dec']),
  u8.map((v) => ['ip', 'ttl', 'set', String(v)]),
  u8.map((v) => ['ip', 'tos', 'set', String(v)]),
  fc.tuple(fc.constantFrom('src', 'dst'), ip6).map(([f, a]) => ['ip6', f, 'set', a]),
  fc.constant(['ip6', 'hoplimit', 'dec']),
  fc.tuple(fc.constantFrom('src', 'dst'), mac).map(([f, a]) => ['eth', f, 'set', a]),
  fc.tuple(fc.constantFrom('tcp', 'udp'), fc.constantFrom('sport', 'dport'), u16).map(([h, f, v]) => [h, f, 'set', String(v)]),
);

const withCtl = <T extends Action>(a: fc.Arbitrary<Omit<T, 'control'>>, ctl: fc.Arbitrary<Control> = control) =>
  fc.tuple(a, ctl).map(([x, c]) => ({ ...x, control: c }) as T);

export const arbAction: fc.Arbitrary<Action> = fc.oneof(
  control.map((c): Action => ({ kind: 'gact', control: c })),
  fc.tuple(fc.constantFrom('egress', 'ingress'), rep).map(([d, dev]): Action => ({ kind: 'mirred', direction: d as 'egress', op: 'redirect', dev, control: { kind: 'stolen' } })),
  withCtl(fc.tuple(fc.constantFrom('egress', 'ingress'), rep).map(([d, dev]) => ({ kind: 'mirred' as const, direction: d as 'egress', op: 'mirror' as const, dev }))),
  withCtl(fc.constant({ kind: 'vlan' as const, op: 'pop' as const })),
  withCtl(
    fc.record({ op: fc.constantFrom('push', 'modify'), id: fc.integer({ min: 0, max: 4095 }), prio: fc.option(fc.integer({ min: 0, max: 7 }), { nil: undefined }), protocol: fc.option(fc.constantFrom(0x8100, 0x88a8), { nil: undefined }) }).map((r) => {
      const a: Record<string, unknown> = { kind: 'vlan', op: r.op, id: r.id };
      if (r.prio !== undefined) a.prio = r.prio;
      if (r.protocol !== undefined) a.protocol = r.protocol;
      return a as never;
    }),
  ),
  withCtl(fc.array(PEDIT_OPS, { minLength: 1, maxLength: 3 }).map((ops) => ({ kind: 'pedit' as const, keys: ops.flatMap((o) => parseMunge(new Tokens(o))) }))),
  withCtl(fc.integer({ min: 1, max: 127 }).map((flags) => ({ kind: 'csum' as const, flags }))),
  withCtl(fc.constant({ kind: 'tunnel_key' as const, op: 'unset' as const })),
  withCtl(
    fc.record({ id: u32, srcIp: ip4, dstIp: ip4, dstPort: u16, tos: u8, ttl: u8, noCsum: fc.boolean() }, { requiredKeys: ['noCsum'] }).map((r) => ({ kind: 'tunnel_key' as const, op: 'set' as const, ...r })),
  ),
  withCtl(
    fc.record(
      {
        commit: fc.constant(true),
        force: fc.constant(true),
        zone: u16,
        mark: masked(u32, u32, 0xffffffff),
        label: fc.tuple(hexBytes(16), hexBytes(16)).map(([value, mask]) => ({ value, mask })),
        nat: fc.oneof(
          fc.constant({ type: 'restore' as const }),
          fc.tuple(fc.constantFrom('src' as const, 'dst' as const), ip4, u16).map(([type, a, p]) => ({ type, addrMin: a, addrMax: a, portMin: p, portMax: p })),
        ),
      },
      { requiredKeys: [] },
    ).map((r) => ({ kind: 'ct' as const, ...r })),
  ),
  withCtl(fc.constant({ kind: 'ct' as const, clear: true })),
  fc
    .record({ rate: fc.integer({ min: 1000, max: 100_000_000 }), burst: fc.integer({ min: 64, max: 200_000 }), mtu: fc.option(fc.integer({ min: 64, max: 9000 }), { nil: undefined }), exceed: simpleControl, control: simpleControl })
    .map(({ rate, burst, mtu, exceed, control: c }): Action => ({ kind: 'police', rate, burst: ticksToBurst(burstToTicks(burst, rate), rate), ...(mtu ? { mtu } : {}), exceed, control: c })),
  withCtl(
    fc.record({ mark: masked(u32, u32, 0xffffffff), priority: u32, ptype: fc.integer({ min: 0, max: 3 }), queueMapping: u16 }, { requiredKeys: ['priority'] }).map((r) => ({ kind: 'skbedit' as const, ...r })),
  ),
  withCtl(fc.record({ rate: fc.integer({ min: 1, max: 100000 }), group: u32, trunc: fc.option(u16, { nil: undefined }) }).map((r) => (r.trunc === undefined ? { kind: 'sample' as const, rate: r.rate, group: r.group } : { kind: 'sample' as const, ...r }))),
  withCtl(fc.constantFrom(0x0800, 0x86dd).map((protocol) => ({ kind: 'mpls' as const, op: 'pop' as const, protocol }))),
  withCtl(fc.record({ protocol: fc.constantFrom(0x8847, 0x8848), label: fc.integer({ min: 0, max: 0xfffff }), tc: fc.integer({ min: 0, max: 7 }), ttl: u8 }).map((r) => ({ kind: 'mpls' as const, op: 'push' as const, ...r }))),
  withCtl(fc.constant({ kind: 'mpls' as const, op: 'dec_ttl' as const })),
);

export function arbRule(): fc.Arbitrary<FlowerRule> {
  return fc
    .record({
      dev: rep,
      chain: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0x0fffffff })),
      prio: fc.integer({ min: 1, max: 0xffff }),
      handle: fc.oneof(fc.constant(0), u32),
      pm: protoAndMatch,
      skip: fc.constantFrom('none', 'skip_sw', 'skip_hw'),
      verbose: fc.boolean(),
      actions: fc.array(arbAction, { minLength: 0, maxLength: 4 }),
    })
    .map(({ dev, chain, prio, handle, pm: [protocol, m], skip, verbose, actions }) => {
      const match = protocol === EthP.ALL ? { ...m } : { ...m, ethType: protocol };
      return {
        dev,
        direction: 'ingress' as const,
        chain,
        prio,
        handle,
        protocol,
        flags: { skipSw: skip === 'skip_sw', skipHw: skip === 'skip_hw', verbose },
        match,
        actions,
      };
    });
}
