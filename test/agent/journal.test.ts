// The journal is what makes an acknowledged rule survive kill -9: these tests
// cut it the ways a crash can (torn last line, flipped bits, a crash between a
// compaction's rename and its log removal) and check what comes back.
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Journal } from '../../agent/journal.js';
import type { VmRecord } from '../../agent/records.js';
import { RuleTable } from '../../agent/ruletable.js';
import { layoutMap } from '../../agent/group.js';
import { crc32 } from 'node:zlib';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import type { FlowerRule } from '../../rules/model.js';
import { vmRecord } from '../helpers/records.js';
import { tempDirs } from '../helpers/tmpdirs.js';

const fresh = tempDirs('vpf-journal-');
const rule = (port: number) => (parseFilter(splitArgs(`dev vf0 ingress prio 1 protocol ip flower ip_proto udp dst_port ${port} action drop`)) as { value: FlowerRule }).value;

/** A journal in a fresh directory holding VM `a`'s record, saved with no rules yet. */
function opened(): { dir: string; j: Journal; rec: VmRecord } {
  const dir = fresh();
  const j = new Journal(dir);
  const rec = vmRecord('a');
  j.save(rec);
  return { dir, j, rec };
}
/** The record's next rule: the udp drop for `port`, with the next id. */
const entry = (rec: VmRecord, port: number) => ({ id: rec.nextRuleId++, rule: rule(port), installedAt: 1 });

/** Edits through a rule table and appends its changes, as the daemon does. */
function edit(j: Journal, rec: VmRecord, f: (t: RuleTable) => void): Promise<void> {
  const t = new RuleTable(rec.rules);
  f(t);
  rec.rules = t.toArray();
  return j.append(rec, { ...t.takeChanges(), nextRuleId: rec.nextRuleId, layout: rec.layout });
}
const add = (j: Journal, rec: VmRecord, port: number) => edit(j, rec, (t) => t.push(entry(rec, port)));
const ports = (rec: VmRecord) => rec.rules.map((e) => (e.rule.match.dstPort as { value: number }).value);

describe('journal', () => {
  it('replays adds, replaces and deletes in install order', () => {
    const { dir, j, rec } = opened();
    for (const p of [1, 2, 3, 4]) add(j, rec, p);
    edit(j, rec, (t) => {
      t.remove(rec.rules[1]!);
      t.replace(rec.rules[0]!, { ...rec.rules[0]!, rule: rule(10) });
    });
    j.close();
    const [back] = new Journal(dir).loadAll();
    expect(ports(back!)).toEqual([10, 3, 4]);
    expect(back!.nextRuleId).toBe(5);
  });

  it('ignores a torn last line (a request never acknowledged) and keeps everything before it', () => {
    const { dir, j, rec } = opened();
    add(j, rec, 1);
    add(j, rec, 2);
    j.close();
    const log = readdirSync(dir).find((f) => f.endsWith('.log'))!;
    appendFileSync(join(dir, log), '0badc0de {"upsert":[{"id":3');
    expect(ports(new Journal(dir).loadAll()[0]!)).toEqual([1, 2]);
  });

  it('stops replay at a line whose checksum does not match', () => {
    const { dir, j, rec } = opened();
    for (const p of [1, 2, 3]) add(j, rec, p);
    j.close();
    const log = join(dir, readdirSync(dir).find((f) => f.endsWith('.log'))!);
    const lines = readFileSync(log, 'utf8').split('\n');
    lines[1] = lines[1]!.replace('"installedAt":1', '"installedAt":7');
    writeFileSync(log, lines.join('\n'));
    expect(ports(new Journal(dir).loadAll()[0]!)).toEqual([1]);
  });

  it('compacts a long log into a snapshot and starts a new log for it', () => {
    const { dir, j, rec } = opened();
    for (let p = 1; p <= 3000; p++) add(j, rec, p);
    j.close();
    const logs = readdirSync(dir).filter((f) => f.endsWith('.log'));
    expect(logs).toHaveLength(1);
    expect(logs[0]).not.toBe('a.1.log');
    expect(ports(new Journal(dir).loadAll()[0]!)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
  });

  it('acknowledges every append of a burst, across compactions, once its line is on disk', async () => {
    // Appends do not wait for each other (the fdatasync runs off the event loop); a compaction
    // in the middle must not close a log under a sync its appends still wait for.
    const { dir, j, rec } = opened();
    const acks = Array.from({ length: 3000 }, (_, i) => add(j, rec, i + 1));
    const settled = await Promise.allSettled(acks);
    expect(settled.filter((s) => s.status === 'rejected')).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.log'))).not.toContain('a.1.log');
    j.close();
    expect(ports(new Journal(dir).loadAll()[0]!)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
  });

  it('completes the appends in flight when the journal is closed (vpfd stopping mid-request)', async () => {
    const { dir, j, rec } = opened();
    const acks = [1, 2, 3].map((p) => add(j, rec, p));
    j.close();
    const settled = await Promise.allSettled(acks);
    expect(settled.filter((s) => s.status === 'rejected')).toEqual([]);
    expect(ports(new Journal(dir).loadAll()[0]!)).toEqual([1, 2, 3]);
  });

  it("does not replay an older epoch's log left by a crash during compaction", () => {
    const { dir, j, rec } = opened();
    add(j, rec, 1);
    const stale = readFileSync(join(dir, 'a.1.log'), 'utf8');
    j.save(rec);
    edit(j, rec, (t) => t.replace(rec.rules[0]!, { ...rec.rules[0]!, rule: rule(5) }));
    j.close();
    // The epoch-1 log comes back, as if the crash hit before its removal: replaying it would undo the replace.
    writeFileSync(join(dir, 'a.1.log'), stale);
    expect(ports(new Journal(dir).loadAll()[0]!)).toEqual([5]);
  });

  it('loads a journal of the previous release, whose layout is [translator key, table] pairs', () => {
    const dir = fresh();
    // As the last release wrote them: snapshot and one log line, layouts as "chain/prio" and "chain/entry" keys.
    const snap = { ...vmRecord('a'), rules: [{ id: 1, rule: rule(53), installedAt: 1 }], nextRuleId: 2, layout: [['0/entry', 1], ['0/1', 2]], epoch: 1 };
    writeFileSync(join(dir, 'a.json'), JSON.stringify(snap));
    const body = JSON.stringify({ upsert: [{ id: 2, rule: { ...rule(54), prio: 7 }, installedAt: 2 }], removed: [], nextRuleId: 3, layout: [['0/entry', 1], ['0/1', 2], ['0/7', 3]] });
    writeFileSync(join(dir, 'a.1.log'), `${crc32(body).toString(16).padStart(8, '0')} ${body}\n`);
    const [rec] = new Journal(dir).loadAll();
    expect(rec!.rules.map((e) => e.id)).toEqual([1, 2]);
    expect(rec!.layout).toEqual([{ chain: 0, table: 1 }, { chain: 0, prio: 1, table: 2 }, { chain: 0, prio: 7, table: 3 }]);
    // What the translator is handed is what it handed out before: tables keep their ids across the upgrade.
    expect([...layoutMap(rec!.layout)]).toEqual([['0/entry', 1], ['0/1', 2], ['0/7', 3]]);
    // And the record it rewrote loads again.
    expect(new Journal(dir).loadAll()[0]!.layout).toEqual(rec!.layout);
  });

  it('keeps appending to a whole log after a restart, and drops a torn tail before appending', () => {
    const { dir, j, rec } = opened();
    add(j, rec, 1);
    add(j, rec, 2);
    j.close();
    // Restart, one more rule, restart: all three come back.
    const j2 = new Journal(dir);
    const [r2] = j2.loadAll();
    add(j2, r2!, 3);
    j2.close();
    expect(ports(new Journal(dir).loadAll()[0]!)).toEqual([1, 2, 3]);
    // A torn line, then a restart and an add: the add must not be glued to the torn bytes (and lost on the next load).
    const log = readdirSync(dir).find((f) => f.endsWith('.log'))!;
    appendFileSync(join(dir, log), '0badc0de {"upsert":[{"id":9');
    const j3 = new Journal(dir);
    const [r3] = j3.loadAll();
    add(j3, r3!, 4);
    j3.close();
    expect(ports(new Journal(dir).loadAll()[0]!)).toEqual([1, 2, 3, 4]);
  });

  it('replays a last line whose newline was never written, and appends after it safely', () => {
    const { dir, j, rec } = opened();
    add(j, rec, 1);
    add(j, rec, 2);
    j.close();
    const log = join(dir, readdirSync(dir).find((f) => f.endsWith('.log'))!);
    writeFileSync(log, readFileSync(log, 'utf8').replace(/\n$/, ''));
    const j2 = new Journal(dir);
    const [r2] = j2.loadAll();
    expect(ports(r2!)).toEqual([1, 2]);
    add(j2, r2!, 3);
    j2.close();
    expect(ports(new Journal(dir).loadAll()[0]!)).toEqual([1, 2, 3]);
  });

  it('replays a long log of adds, replaces and deletes to the state the edits left', () => {
    const { dir, j, rec } = opened();
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    let port = 1;
    for (let k = 0; k < 400; k++) {
      edit(j, rec, (t) => {
        const live = t.toArray();
        for (let n = rnd(4); n > 0; n--) t.push(entry(rec, port++));
        // Removes and replaces of rules that existed before this edit (a removed one is not touched again).
        const gone = new Set<number>();
        for (let n = rnd(3); n > 0 && live.length; n--) {
          const e = live[rnd(live.length)]!;
          if (gone.has(e.id)) continue;
          gone.add(e.id);
          if (rnd(2)) t.remove(e);
          else t.replace(e, { ...e, rule: rule(port++) });
        }
      });
    }
    j.close();
    expect(readdirSync(dir).filter((f) => f.endsWith('.log'))).toEqual(['a.1.log']);
    const [back] = new Journal(dir).loadAll();
    expect(back!.rules.map((e) => e.id)).toEqual(rec.rules.map((e) => e.id));
    expect(ports(back!)).toEqual(ports(rec));
    expect(back!.nextRuleId).toBe(rec.nextRuleId);
  });
});
