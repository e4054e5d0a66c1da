// Durable per-VM state: a snapshot plus an append-only log of changes.
// The snapshot is written temp + fsync + rename (+ fsync of the directory); each
// change appends one checksummed line, so a request costs a few hundred bytes on
// disk whatever the VM's size. The line is written at once and made durable by
// an fdatasync on libuv's thread pool, never on the event loop: other VMs go on
// while one VM's change reaches the disk, and lines written while a sync runs
// share the next one (group commit). kill -9 at any moment leaves the snapshot
// whole and the log readable up to its last whole line; a torn or unsynced last
// line belongs to a request that was never acknowledged.
import { closeSync, existsSync, fdatasync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
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
  /** Police action -> meter id, whole, when one was given or freed. */
  meterIds?: [string, number][];
  /** Set once the VM's declared outer TPID was broken. */
  outerTpidBroken?: string;
}

/**
 * A log replayed onto a record: one rules array and one id -> index map for the
 * whole log (a removal leaves a hole, compacted once at the end), so a restart
 * costs O(lines + rules), not a rebuild of the rules per line.
 */
class Replay {
  private readonly rules: (RuleEntry | undefined)[];
  private readonly at: Map<number, number>;
  private holes = 0;

  constructor(private readonly rec: VmRecord) {
    this.rules = rec.rules;
    this.at = new Map(rec.rules.map((e, i) => [e.id, i]));
  }

  apply(d: JournalDelta): void {
    const { rec, rules, at } = this;
    // Removals first, then upserts: an id removed and added again in one line goes last.
    for (const id of d.removed) {
      const i = at.get(id);
      if (i === undefined) continue;
      rules[i] = undefined;
      at.delete(id);
      this.holes++;
    }
    for (const u of d.upsert) {
      const i = at.get(u.id);
      if (i === undefined) {
        at.set(u.id, rules.length);
        rules.push(u);
      } else rules[i] = u;
    }
    rec.nextRuleId = d.nextRuleId;
    if (d.layout) rec.layout = readLayout(d.layout);
    if (d.mode) rec.mode = d.mode;
    if (d.vfSettings) rec.vfSettings = d.vfSettings;
    if (d.chains) rec.chains = d.chains;
    if (d.policers) rec.policers = d.policers;
    if (d.zones) rec.zones = d.zones;
    if (d.meterIds) rec.meterIds = d.meterIds;
    if (d.outerTpidBroken) rec.outerTpidBroken = d.outerTpidBroken;
  }

  finish(): void {
    this.rec.rules = this.holes ? this.rules.filter((e): e is RuleEntry => e !== undefined) : (this.rules as RuleEntry[]);
  }
}

/** Compact once the log outgrows the snapshot (and at least this much), so replay stays cheap. */
const MIN_COMPACT_BYTES = 1 << 20;

/** A VM's open log: lines written (counted) and how many of them an fdatasync has covered. */
interface LogFile {
  fd: number;
  bytes: number;
  snapshotBytes: number;
  written: number;
  synced: number;
  /** The fdatasync in flight and the lines it covers. */
  syncing?: { upto: number; done: Promise<void> };
  /** The next fdatasync, queued behind the one in flight: it covers every line written before it starts. */
  next?: Promise<void>;
}

const openLog = (fd: number, bytes: number, snapshotBytes: number): LogFile => ({ fd, bytes, snapshotBytes, written: 0, synced: 0 });

export class Journal {
  private readonly logs = new Map<string, LogFile>();

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
    this.logs.set(rec.name, openLog(openSync(this.logPath(rec.name, rec.epoch), 'a', 0o600), 0, text.length));
    this.syncDir();
  }

  /** Appends one change; resolves once it is on disk. Compacts into a new snapshot when the log has grown large. */
  append(rec: VmRecord, delta: JournalDelta): Promise<void> {
    this.write(rec, delta);
    return this.durable(rec.name);
  }

  /**
   * Writes one change without waiting for the disk (a conntrack zone claimed
   * inside a translation): durable with the next append or durable() of the VM,
   * as an fdatasync covers every line written before it.
   */
  write(rec: VmRecord, delta: JournalDelta): void {
    const log = this.logs.get(rec.name);
    if (!log) return this.save(rec);
    const body = JSON.stringify(delta);
    const line = `${crc32(body).toString(16).padStart(8, '0')} ${body}\n`;
    writeSync(log.fd, line);
    log.bytes += line.length;
    log.written++;
    // The snapshot holds the whole record, this change included, and is fsynced before save() returns.
    if (log.bytes > Math.max(MIN_COMPACT_BYTES, log.snapshotBytes)) this.save(rec);
  }

  /** Resolves once every line written for the VM so far is on disk. */
  durable(vm: string): Promise<void> {
    const log = this.logs.get(vm);
    if (!log || log.synced >= log.written) return Promise.resolve();
    if (log.syncing && log.syncing.upto >= log.written) return log.syncing.done;
    const start = (): Promise<void> => {
      log.next = undefined;
      const upto = log.written;
      const done = new Promise<void>((resolve, reject) =>
        fdatasync(log.fd, (err) => {
          if (err) return reject(err);
          log.synced = Math.max(log.synced, upto);
          resolve();
        }),
      );
      log.syncing = { upto, done };
      return done;
    };
    if (!log.syncing) return start();
    // One fdatasync at a time per log: this one waits for the one in flight, whatever its outcome.
    return (log.next ??= log.syncing.done.then(start, start));
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
    this.logs.delete(vm);
    if (!log) return;
    // An fdatasync in flight or queued keeps the fd open until it is done (closing under it would fail its waiters).
    const pending = log.next ?? log.syncing?.done;
    if (pending) void pending.then(() => closeSync(log.fd), () => closeSync(log.fd));
    else closeSync(log.fd);
  }

  remove(vm: string): void {
    this.closeLog(vm);
    rmSync(this.snapshotPath(vm), { force: true });
    for (const f of readdirSync(this.dir)) if (f.startsWith(`${vm}.`) && f.endsWith('.log')) rmSync(join(this.dir, f), { force: true });
  }

  close(): void {
    for (const vm of [...this.logs.keys()]) this.closeLog(vm);
  }

  /**
   * Every VM: its snapshot with its log replayed up to the last whole, checksummed line.
   * A log that is whole to its end is kept and appended to; one with a torn or bad tail
   * is folded into a new snapshot, so the tail is dropped.
   */
  loadAll(): VmRecord[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => {
        const text = readFileSync(join(this.dir, f), 'utf8');
        const rec = JSON.parse(text) as VmRecord;
        // Records before layout slots kept the translator's [key, table] pairs.
        rec.layout = readLayout(rec.layout);
        const path = this.logPath(rec.name, rec.epoch ?? 0);
        const exists = existsSync(path);
        const log = exists ? readFileSync(path, 'utf8') : '';
        const replay = new Replay(rec);
        let used = 0;
        for (let start = 0; start < log.length; ) {
          const nl = log.indexOf('\n', start);
          const end = nl < 0 ? log.length : nl;
          const line = log.slice(start, end);
          const sp = line.indexOf(' ');
          const body = line.slice(sp + 1);
          if (sp !== 8 || parseInt(line.slice(0, 8), 16) !== crc32(body)) break;
          replay.apply(JSON.parse(body) as JournalDelta);
          start = used = end + 1;
        }
        replay.finish();
        // A last line without its newline (replayed if its checksum holds) must not have more appended to it.
        if (exists && used === log.length) {
          // Every line is whole: appending to this log is as durable as a new snapshot, without rewriting it.
          this.logs.set(rec.name, openLog(openSync(path, 'a', 0o600), log.length, text.length));
        } else this.save(rec);
        return rec;
      });
  }
}
