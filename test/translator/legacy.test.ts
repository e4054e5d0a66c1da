// The legacy-mode translation as an operator reads it in a flow dump: one
// cookie kind, the VF in the cookie, few flow mods per setting change, and the
// settings the datapath cannot honour refused up front.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultVfSettings, VLAN_PROTO_8021AD, VLAN_PROTO_8021Q, type VfSettings } from '../../rules/vf.js';
import { cookieKind, cookieRuleId, FlowKind } from '../../translator/cookie.js';
import { LegacyTable, legacyMeterId, translateLegacy, type LegacyInput } from '../../translator/legacy.js';
import { defaultPortMap } from '../../translator/portmap.js';
import { actionsText, flowText, matchText } from '../../ovs/openflow/flow.js';

const N = 4;
const ports = defaultPortMap(N);
const mac = (vf: number, variant = 0) => `02:00:00:00:${variant.toString(16).padStart(2, '0')}:${(vf + 1).toString(16).padStart(2, '0')}`;
const vf = (n: number, over: Partial<VfSettings> = {}): VfSettings => ({ ...defaultVfSettings(), mac: mac(n), ...over });
const input = (vfs: VfSettings[], over: Partial<LegacyInput> = {}): LegacyInput => ({ ports, vfs, uplinkUp: true, pfMac: '02:aa:00:00:00:01', ...over });
const cookies = (i: LegacyInput) => new Set(translateLegacy(i).flows.map((f) => f.cookie));
const changed = (a: LegacyInput, b: LegacyInput) => {
  const x = cookies(a), y = cookies(b);
  return [...x, ...y].filter((c) => x.has(c) !== y.has(c));
};

/** Random settings of VF n; its MAC is drawn from a pool of its own so VFs never share one. */
const arbSettings = (n: number) =>
  fc.record({
    mac: fc.constantFrom(mac(n, 0), mac(n, 1), '00:00:00:00:00:00'),
    vlan: fc.constantFrom(0, 10, 20, 4095),
    qos: fc.integer({ min: 0, max: 7 }),
    vlanProto: fc.constantFrom(VLAN_PROTO_8021Q, VLAN_PROTO_8021AD),
    spoofchk: fc.boolean(),
    trust: fc.boolean(),
    linkState: fc.constantFrom('auto' as const, 'enable' as const, 'disable' as const),
    maxTxRate: fc.constantFrom(0, 1, 100, 10_000),
    minTxRate: fc.constant(0),
    rssQuery: fc.boolean(),
    promisc: fc.boolean(),
    allmulti: fc.boolean(),
  });
const arbVfs = fc.tuple(...Array.from({ length: N }, (_, n) => arbSettings(n)));

describe('translateLegacy: cookies', () => {
  it('every flow is of kind legacy; flows of one VF carry VF+1, flows of the port map 0', () => {
    const t = translateLegacy(input([vf(0, { spoofchk: true, vlan: 10 }), vf(1, { trust: true, promisc: true }), vf(2, { linkState: 'disable' }), vf(3, { maxTxRate: 5 })]));
    for (const f of t.flows) {
      expect(cookieKind(f.cookie)).toBe(FlowKind.LEGACY);
      const mentioned = ports.vfs.map((p, n) => (new RegExp(`(in_port|reg0)=${p.port}(,|$)`).test(matchText(f.match)) ? n : -1)).filter((n) => n >= 0);
      if (mentioned.length === 1) expect(cookieRuleId(f.cookie)).toBe(mentioned[0]! + 1);
    }
    // A dump filtered by VF 0's cookie shows its ingress ACL, its MAC and its egress ACL.
    const vf0 = t.flows.filter((f) => cookieRuleId(f.cookie) === 1).map((f) => `${f.table} ${matchText(f.match)}`);
    expect(vf0).toEqual(expect.arrayContaining(['0 in_port=100,vlan_tci=0x0000/0x1000,dl_src=' + mac(0), '0 in_port=100', `1 dl_dst=${mac(0)}`, '2 reg0=100,dl_vlan=10', '2 reg0=100']));
  });

  it('no two flows share table, priority and match (OpenFlow would let the second replace the first), cookies are unique', () => {
    fc.assert(
      fc.property(arbVfs, fc.boolean(), (vfs, up) => {
        // Two VFs with the PF's MAC and each other's: the FDB merges them into one flow.
        const t = translateLegacy(input([...vfs.slice(0, 2), { ...vfs[2]!, mac: vfs[1]!.mac === '00:00:00:00:00:00' ? mac(1) : vfs[1]!.mac }, { ...vfs[3]!, mac: '02:aa:00:00:00:01' }], { uplinkUp: up }));
        const keys = t.flows.map((f) => `${f.table}|${f.priority}|${matchText(f.match)}`);
        expect(new Set(keys).size).toBe(keys.length);
        expect(new Set(t.flows.map((f) => f.cookie)).size).toBe(t.flows.length);
      }),
      { numRuns: 200 },
    );
  });

  it('is deterministic and sorted: the same settings give the same flows in the same order', () => {
    fc.assert(
      fc.property(arbVfs, (vfs) => {
        const a = translateLegacy(input(vfs)), b = translateLegacy(input(structuredClone(vfs)));
        expect(a.flows).toEqual(b.flows);
        for (let i = 1; i < a.flows.length; i++) {
          const p = a.flows[i - 1]!, q = a.flows[i]!;
          expect(p.table < q.table || (p.table === q.table && p.priority >= q.priority)).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('translateLegacy: one VF changes, only its flows change', () => {
  it('any change of one VF touches only flows carrying that VF in the cookie, and at most 12 of them', () => {
    const arbChange = fc.integer({ min: 0, max: N - 1 }).chain((k) => fc.tuple(fc.constant(k), arbSettings(k)));
    fc.assert(
      fc.property(arbVfs, arbChange, (vfs, [k, next]) => {
        const after = vfs.map((s, n) => (n === k ? next : s));
        const diff = changed(input(vfs), input(after));
        for (const c of diff) expect(cookieRuleId(c)).toBe(k + 1);
        // Old and new versions of its ingress allow + drop, egress allow + drop, FDB entry, promisc entry.
        expect(diff.length).toBeLessThanOrEqual(12);
      }),
      { numRuns: 500 },
    );
  });

  it('setting spoofchk on VF 2 replaces exactly its ingress allow flow and adds its drop flow', () => {
    const base = [vf(0), vf(1), vf(2), vf(3)];
    const after = base.map((s, n) => (n === 2 ? { ...s, spoofchk: true } : s));
    const a = translateLegacy(input(base)), b = translateLegacy(input(after));
    const diff = changed(input(base), input(after));
    expect(diff).toHaveLength(3);
    const gone = a.flows.filter((f) => diff.includes(f.cookie)).map((f) => matchText(f.match));
    const added = b.flows.filter((f) => diff.includes(f.cookie)).map((f) => matchText(f.match));
    expect(gone).toEqual(['in_port=102']);
    expect(added.sort()).toEqual(['in_port=102', `in_port=102,dl_src=${mac(2)}`]);
  });

  it('the uplink going down changes only the flows of VFs whose link state is auto', () => {
    const vfs = [vf(0, { linkState: 'auto' }), vf(1, { linkState: 'enable' }), vf(2, { linkState: 'disable' }), vf(3, { linkState: 'auto', vlan: 7 })];
    const diff = changed(input(vfs, { uplinkUp: true }), input(vfs, { uplinkUp: false }));
    expect(new Set(diff.map(cookieRuleId))).toEqual(new Set([1, 4]));
  });
});

describe('translateLegacy: drops are counted per VF', () => {
  it('tx/rx drop cookies name drop flows of that VF: ingress ACL for tx, egress ACL for rx', () => {
    const t = translateLegacy(input([vf(0, { spoofchk: true }), vf(1, { vlan: 5 }), vf(2, { linkState: 'disable' }), vf(3)]));
    const byCookie = new Map(t.flows.map((f) => [f.cookie, flowText(f)]));
    const drops = (n: number) => t.perVf[n]!;
    for (const p of t.perVf) {
      for (const c of p.txDropCookies) expect(byCookie.get(c)).toMatchObject({ table: LegacyTable.INGRESS, match: `in_port=${ports.vfs[p.vf]!.port}`, actions: 'drop' });
      for (const c of p.rxDropCookies) expect(byCookie.get(c)).toMatchObject({ table: LegacyTable.EGRESS, match: `reg0=${ports.vfs[p.vf]!.port}`, actions: 'drop' });
    }
    expect([drops(0).txDropCookies.length, drops(0).rxDropCookies.length]).toEqual([1, 0]); // spoofchk
    expect([drops(1).txDropCookies.length, drops(1).rxDropCookies.length]).toEqual([1, 1]); // VST: tagged tx, foreign VLAN rx
    expect([drops(2).txDropCookies.length, drops(2).rxDropCookies.length]).toEqual([1, 1]); // link down
    expect([drops(3).txDropCookies.length, drops(3).rxDropCookies.length]).toEqual([0, 0]); // no ACL at all, as mlx5
    // A disabled VF has nothing but drops: no allow flow sends its traffic anywhere.
    const vf2 = t.flows.filter((f) => cookieRuleId(f.cookie) === 3 && f.table !== LegacyTable.FDB);
    expect(vf2.every((f) => actionsText(f.actions) === 'drop')).toBe(true);
  });
});

describe('translateLegacy: rates', () => {
  it('max_tx_rate becomes a kbps drop meter on the VF ingress allow flow, first action', () => {
    const t = translateLegacy(input([vf(0, { maxTxRate: 250 }), vf(1), vf(2, { maxTxRate: 1 }), vf(3)]));
    expect(t.meters).toEqual([
      { id: legacyMeterId(0), spec: 'kbps burst stats bands=type=drop rate=250000 burst_size=25000' },
      { id: legacyMeterId(2), spec: 'kbps burst stats bands=type=drop rate=1000 burst_size=100' },
    ]);
    const allow0 = t.flows.find((f) => f.table === 0 && matchText(f.match) === 'in_port=100')!;
    expect(actionsText(allow0.actions).startsWith(`meter:${legacyMeterId(0)},`)).toBe(true);
    expect(t.perVf[0]!.meterId).toBe(legacyMeterId(0));
    expect(t.perVf[1]!.meterId).toBeUndefined();
  });
});

describe('translateLegacy: ports', () => {
  it('never outputs to a VF representor port, and drops what arrives from one', () => {
    fc.assert(
      fc.property(arbVfs, (vfs) => {
        const t = translateLegacy(input(vfs));
        const reps = ports.vfs.map((p) => p.rep);
        for (const f of t.flows) for (const r of reps) expect(actionsText(f.actions)).not.toMatch(new RegExp(`output:${r}\\b|->reg0.*\\b${r}\\b`));
        for (const r of reps) expect(t.flows.some((f) => matchText(f.match).includes(`in_port=${r}`))).toBe(false);
        expect(flowText(t.flows.find((f) => f.table === 0 && f.priority === 0)!)).toMatchObject({ match: '', actions: 'drop' });
      }),
      { numRuns: 50 },
    );
  });

  it('a VF without settings has the mlx5 defaults (no ACL, zero MAC: no unicast entry)', () => {
    const t = translateLegacy(input([], { pfMac: undefined }));
    expect(t.perVf).toHaveLength(N);
    expect(t.flows.filter((f) => f.table === LegacyTable.FDB && f.priority === 200)).toEqual([]);
    expect(t.flows.filter((f) => f.table === 0 && matchText(f.match) === 'in_port=101').map((f) => actionsText(f.actions))).toEqual(['goto_table:1']);
  });
});
