// Durable per-VM state: a snapshot plus an append-only log of changes.
// The snapshot is written temp + fsync + rename (+ fsync of the directory); each
// change appends one checksummed line and fdatasyncs it, so a request costs a
// few hundred bytes on disk whatever the VM's size. kill -9 at any moment leaves
// the snapshot whole and the log readable up to its last whole line; a torn
// last line belongs to a request that was never acknowledged.
import { closeSync, existsSync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { VfSettings } from '../rules/vf.js';
import type { ChainEntry, PolicerEntry, RuleEntry, VmRecord } from './records.js';
import { readLayout, type TableSlot } from './group.js';

/** One logged change: rules added or replaced (by id, in install order), rules removed, and the rest of the record. */
export interface JournalDelta {
  upsert: RuleEntry[];
  removed: number[];
  nextRuleId: number;
  /** Absent when unchanged. */
  layout?: TableSlot[];
  mode?: VmRecord['mode'];
  vfSettings?: VfSettings[];
  chains?: ChainEntry[];
  /** The action API's police actions, whole, when they changed. */
  policers?: PolicerEntry[];
  /** Guest ct zone -> host zone, whole, when a zone was claimed. */
  zones?: [number, number][];
  /** Set once the VM's declared outer TPID was broken. */
  outerTpidBroken?: string;
}

export function applyDelta(rec: VmRecord, d: JournalDelta): void {
  const removed = new Set(d.removed);
  const rules = removed.size ? rec.rules.filter((e) => !removed.has(e.id)) : rec.rules;
  const at = new Map(rules.map((e, i) => [e.id, i]));
  for (const u of d.upsert) {
    const i = at.get(u.id);
    if (i === undefined) {
      at.set(u.id, rules.length);
      rules.push(u);
    } else rules[i] = u;
  }
  rec.rules = rules;
  rec.nextRuleId = d.nextRuleId;
  if (d.layout) rec.layout = readLayout(d.layout);
  if (d.mode) rec.mode = d.mode;
  if (d.vfSettings) rec.vfSettings = d.vfSettings;
  if (d.chains) rec.chains = d.chains;
  if (d.policers) rec.policers = d.policers;
  if (d.zones) rec.zones = d.zones;
  if (d.outerTpidBroken) rec.outerTpidBroken = d.outerTpidBroken;
}

/** Compact once the log outgrows the snapshot (and at least this much), so replay stays cheap. */
const MIN_COMPACT_BYTES = 1 << 20;

export class Journal {
  private readonly logs = new Map<string, { fd: number; bytes: number; snapshotBytes: number }>();

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  private snapshotPath(vm: string): string {
    return join(this.dir, `${vm}.json`);
  }

  private logPath(vm: string, epoch: number): string {
    return join(this.dir, `${vm}.${epoch}.log`);
  }

  /** Writes the whole record as a new snapshot and starts an empty log for it. */
  save(rec: VmRecord): void {
    this.closeLog(rec.name);
    const prev = rec.epoch ?? 0;
    rec.epoch = prev + 1;
    const text = JSON.stringify(rec);
    const tmp = `${this.snapshotPath(rec.name)}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.snapshotPath(rec.name));
    this.syncDir();
    // The old log is folded into the snapshot now; a crash before this line only leaves a stray file.
    rmSync(this.logPath(rec.name, prev), { force: true });
    this.logs.set(rec.name, { fd: openSync(this.logPath(rec.name, rec.epoch), 'a', 0o600), bytes: 0, snapshotBytes: text.length });
    this.syncDir();
  }

  /** Appends one change durably; compacts into a new snapshot when the log has grown large. */
  append(rec: VmRecord, delta: JournalDelta): void {
    const log = this.logs.get(rec.name);
    if (!log) return this.save(rec);
    const body = JSON.stringify(delta);
    const line = `${crc32(body).toString(16).padStart(8, '0')} ${body}\n`;
    writeSync(log.fd, line);
    fdatasyncSync(log.fd);
    log.bytes += line.length;
    if (log.bytes > Math.max(MIN_COMPACT_BYTES, log.snapshotBytes)) this.save(rec);
  }

  private syncDir(): void {
    const dfd = openSync(this.dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }

  private closeLog(vm: string): void {
    const log = this.logs.get(vm);
    if (log) closeSync(log.fd);
    this.logs.delete(vm);
  }

  remove(vm: string): void {
    this.closeLog(vm);
    rmSync(this.snapshotPath(vm), { force: true });
    for (const f of readdirSync(this.dir)) if (f.startsWith(`${vm}.`) && f.endsWith('.log')) rmSync(join(this.dir, f), { force: true });
  }

  close(): void {
    for (const vm of [...this.logs.keys()]) this.closeLog(vm);
  }

  /** Every VM: its snapshot with its log replayed up to the last whole, checksummed line. */
  loadAll(): VmRecord[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => {
        const rec = JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as VmRecord;
        // Records before layout slots kept the translator's [key, table] pairs.
        rec.layout = readLayout(rec.layout);
        const path = this.logPath(rec.name, rec.epoch ?? 0);
        if (existsSync(path) && statSync(path).size) {
          for (const line of readFileSync(path, 'utf8').split('\n')) {
            const sp = line.indexOf(' ');
            const body = line.slice(sp + 1);
            if (sp !== 8 || parseInt(line.slice(0, 8), 16) !== crc32(body)) break;
            applyDelta(rec, JSON.parse(body) as JournalDelta);
          }
        }
        // Replayed state becomes the new snapshot, so the next run starts from one file.
        this.save(rec);
        return rec;
      });
  }
}
