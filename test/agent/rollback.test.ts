// A refused transaction (translator refusal, flow quota) must leave the VM's
// rules exactly as before it: FilterTable.sync() changes rec.rules in place
// (a commit on top of 100k rules must not copy them), so rollback() has to
// undo adds, replaces and removals, in install order, across one or several syncs.
import { describe, expect, it } from 'vitest';
import { FilterTable } from '../../agent/filters.js';
import type { RuleEntry, VmRecord } from '../../agent/records.js';
import type { FlowerRule } from '../../rules/model.js';
import { NlmF } from '../../rules/netlink/nlmsg.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { defaultPortMap } from '../../translator/portmap.js';

const ADD = NlmF.REQUEST | NlmF.ACK | NlmF.EXCL | NlmF.CREATE;
const REPLACE = NlmF.REQUEST | NlmF.ACK | NlmF.CREATE;
const rule = (prio: number, handle: number, port: number) =>
  (parseFilter(splitArgs(`dev vf${prio % 2} ingress prio ${prio} handle ${handle} protocol ip flower ip_proto udp dst_port ${port} action drop`)) as { value: FlowerRule }).value;
const record = (): VmRecord => ({ name: 't', vfs: 2, ports: defaultPortMap(2), attach: {}, rules: [], nextRuleId: 1, zoneBase: 256, layout: [] });

/** What a rollback must give back: the entries themselves, in order, and the counters. */
const state = (rec: VmRecord) => ({ rules: rec.rules.slice(), ids: rec.rules.map((e) => e.id), nextRuleId: rec.nextRuleId, chains: rec.chains });
/** No hole in the array (a hole is skipped by forEach/map, so the other checks would not see it). */
const dense = (a: readonly unknown[]) => Object.keys(a).length === a.length && !a.includes(undefined);
const view = (rules: readonly RuleEntry[]) => rules.map((e) => `${e.id}:${e.rule.prio}/${e.rule.handle}:${JSON.stringify(e.rule.match.dstPort)}`);

/** mulberry32: every bit of it is random enough for picking ops (an LCG's low bit alternates). */
function seeded(seed: number) {
  return (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) % n;
  };
}

/** Random edits of the kinds a batch holds: adds, replaces of existing filters, deletes of one filter or a whole prio. */
function randomEdits(t: FilterTable, rec: VmRecord, rnd: (n: number) => number, n: number, port: { n: number }): void {
  for (let k = 0; k < n; k++) {
    const live = t.table.toArray();
    const op = rnd(4);
    const pick = live.length ? live[rnd(live.length)]! : undefined;
    if (op === 0 || !pick) {
      const prio = 1 + rnd(6);
      const handle = 1000 + port.n;
      t.filterChange({ type: 'filter', op: 'new', hdr: {} as never, rule: rule(prio, handle, port.n++) }, ADD);
    } else if (op === 1) t.filterChange({ type: 'filter', op: 'new', hdr: {} as never, rule: rule(pick.rule.prio, pick.rule.handle, port.n++) }, REPLACE);
    else if (op === 2) t.filterChange({ type: 'filter', op: 'del', hdr: {} as never, sel: { dev: pick.rule.dev, direction: 'ingress', chain: 0, prio: pick.rule.prio, protocol: 0, handle: pick.rule.handle, kind: 'flower' } }, 0);
    else if (rnd(8) === 0) t.filterChange({ type: 'filter', op: 'del', hdr: {} as never, sel: { dev: pick.rule.dev, direction: 'ingress', chain: 0, prio: pick.rule.prio, protocol: 0, handle: 0, kind: 'flower' } }, 0);
  }
}

describe('filter table rollback after sync (rec.rules changed in place)', () => {
  it('puts back the rules after adds only, replaces only, and removals', () => {
    const rec = record();
    const t = new FilterTable(rec, 1000);
    for (let i = 1; i <= 20; i++) t.filterChange({ type: 'filter', op: 'new', hdr: {} as never, rule: rule(1 + (i % 3), i, i) }, ADD);
    t.sync();
    const cases: ((t: FilterTable) => void)[] = [
      (t) => t.filterChange({ type: 'filter', op: 'new', hdr: {} as never, rule: rule(5, 1, 99) }, ADD),
      (t) => t.filterChange({ type: 'filter', op: 'new', hdr: {} as never, rule: rule(2, 1, 98) }, REPLACE),
      (t) => t.filterChange({ type: 'filter', op: 'del', hdr: {} as never, sel: { dev: 'vf0', direction: 'ingress', chain: 0, prio: 2, protocol: 0, handle: 4, kind: 'flower' } }, 0),
      (t) => {
        // A rule added and then deleted in the same transaction, beside a replace below the first hole.
        t.filterChange({ type: 'filter', op: 'new', hdr: {} as never, rule: rule(4, 7, 97) }, ADD);
        t.filterChange({ type: 'filter', op: 'new', hdr: {} as never, rule: rule(1, 3, 96) }, REPLACE);
        t.filterChange({ type: 'filter', op: 'del', hdr: {} as never, sel: { dev: 'vf0', direction: 'ingress', chain: 0, prio: 4, protocol: 0, handle: 7, kind: 'flower' } }, 0);
        t.filterChange({ type: 'filter', op: 'del', hdr: {} as never, sel: { dev: 'vf1', direction: 'ingress', chain: 0, prio: 3, protocol: 0, handle: 8, kind: 'flower' } }, 0);
      },
      (t) => {
        // Two adds, the second deleted: its hole lies past the array the sync started from.
        t.filterChange({ type: 'filter', op: 'new', hdr: {} as never, rule: rule(4, 8, 95) }, ADD);
        t.filterChange({ type: 'filter', op: 'new', hdr: {} as never, rule: rule(4, 9, 94) }, ADD);
        t.filterChange({ type: 'filter', op: 'del', hdr: {} as never, sel: { dev: 'vf0', direction: 'ingress', chain: 0, prio: 4, protocol: 0, handle: 9, kind: 'flower' } }, 0);
        expect(t.sync()).toBeUndefined();
        expect(dense(rec.rules) && rec.rules.at(-1)!.rule.handle === 8).toBe(true);
      },
    ];
    for (const edit of cases) {
      const before = state(rec);
      const s = t.snapshot();
      edit(t);
      t.sync();
      expect(view(rec.rules)).not.toEqual(view(before.rules));
      t.rollback(s);
      expect(rec.rules).toEqual(before.rules);
      rec.rules.forEach((e, i) => expect(e).toBe(before.rules[i]));
      expect(rec.nextRuleId).toBe(before.nextRuleId);
      expect(view(t.table.toArray())).toEqual(view(before.rules));
    }
  });

  it('random transactions: a refused one leaves the rules as before, a committed one as a fresh table would have them', () => {
    const rec = record();
    const t = new FilterTable(rec, 10_000);
    const rnd = seeded(11);
    const port = { n: 1 };
    randomEdits(t, rec, rnd, 300, port);
    t.sync();
    for (let k = 0; k < 300; k++) {
      const before = state(rec);
      const s = t.snapshot();
      randomEdits(t, rec, rnd, 1 + rnd(6), port);
      t.sync();
      expect(dense(rec.rules)).toBe(true);
      // Sometimes a second sync within the same transaction (a batch synced twice): both are undone.
      if (rnd(5) === 0) {
        randomEdits(t, rec, rnd, 1 + rnd(3), port);
        t.sync();
      }
      if (rnd(2)) {
        t.rollback(s);
        expect(dense(rec.rules)).toBe(true);
        expect(rec.rules.length).toBe(before.rules.length);
        rec.rules.forEach((e, i) => expect(e).toBe(before.rules[i]));
        expect(rec.nextRuleId).toBe(before.nextRuleId);
      }
      // Whatever happened, the table agrees with the record, as one rebuilt from it would.
      expect(view(t.table.toArray())).toEqual(view(rec.rules));
      expect(view(new FilterTable({ ...rec, rules: rec.rules.slice() }, 10_000).table.toArray())).toEqual(view(rec.rules));
    }
  });
});
