// An OVSDB client (RFC 7047 JSON-RPC over a unix socket): transact, monitor
// with a local cache, echo both ways, and reconnect with backoff; after a
// reconnect it re-monitors, rebuilds the cache and emits 'reconnected' so the
// daemon can reconcile. Monitors use ovsdb-server's `monitor_cond` extension
// (ovsdb-server(7) 4.1.12-4.1.14: per-table conditions, `update2` row diffs)
// and fall back to plain `monitor` on servers that lack it; either way the
// cache holds rows in the plain monitor's JSON encoding.
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { JsonSplitter } from './framing.js';

export type Row = Record<string, unknown>;
export type Op = Record<string, unknown>;

export class OvsdbError extends Error {
  constructor(
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  /** Runs on the reply before any later message is read: a monitor's initial rows must land before its first update. */
  onResult?(v: unknown): void;
}

/**
 * One clause of a monitor condition: RFC 7047 5.1 `[column, function, value]`,
 * or a bare boolean (ovsdb-server(7) 5.1).
 */
export type Condition = [column: string, fn: '==' | '!=' | '<' | '<=' | '>' | '>=' | 'includes' | 'excludes', value: unknown] | boolean;

export interface MonitorSpec {
  db: string;
  /** table -> monitored columns. */
  tables: Record<string, string[]>;
  /**
   * table -> clauses; a row is monitored when ANY clause holds (unlike a
   * transact `where`: ovsdb/condition.c ovsdb_condition_match_any_clause).
   * A table absent here, or `[]`, monitors all rows; `[false]` none.
   */
  where?: Record<string, Condition[]>;
}

/** A table update in the plain monitor's shape: the payload of the 'update' event. */
export type TableUpdates = Record<string, Record<string, { new?: Row; old?: Row }>>;

/** <row-update2> (ovsdb-server(7) 4.1.14): exactly one member. */
type RowUpdate2 = { initial?: Row; insert?: Row; delete?: null; modify?: Row };
type TableUpdates2 = Record<string, Record<string, RowUpdate2>>;

type Atomic = 'integer' | 'real' | 'boolean' | 'string' | 'uuid';
/** A column's <type> (RFC 7047 3.2) as far as encoding and diffs need it. */
interface ColumnType {
  key: Atomic;
  value?: Atomic;
  min: number;
  max: number;
}
/** table -> column -> type, from get_schema. */
type DbTypes = Map<string, Map<string, ColumnType>>;

interface Monitor {
  /** The monitor's <json-value> on the wire, unique among this client's monitors. */
  id: string;
  /** Our own copy: setConditions replaces its `where`, resync re-sends it. */
  spec: MonitorSpec;
  /** Set while it runs as monitor_cond on the current connection; undefined for plain monitor. */
  types?: DbTypes;
}

export class OvsdbClient extends EventEmitter {
  private sock: Socket | undefined;
  private nextId = 1;
  private nextMonitor = 1;
  private pending = new Map<number, Pending>();
  private monitors: Monitor[] = [];
  private closed = false;
  private backoffMs = 100;
  private echoTimer: NodeJS.Timeout | undefined;
  /** When the server was last heard from, or this process last started listening again after its loop was blocked (monotonic ms). */
  private lastHeard = performance.now();
  /** Per connection: a restarted server may run another version or schema. */
  private schemas = new Map<string, Promise<DbTypes>>();
  private noMonitorCond = false;
  /** table -> uuid -> row, for the monitored tables. */
  readonly cache = new Map<string, Map<string, Row>>();

  constructor(
    private readonly path: string,
    private readonly log?: Logger,
    private readonly opts: { timeoutMs?: number; echoMs?: number } = {},
  ) {
    super();
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = connect(this.path.replace(/^unix:/, ''));
      const splitter = new JsonSplitter();
      sock.setEncoding('utf8');
      sock.once('connect', () => {
        this.sock = sock;
        this.backoffMs = 100;
        this.lastHeard = performance.now();
        this.schemas.clear();
        this.noMonitorCond = false;
        this.startEcho();
        resolve();
      });
      sock.on('data', (chunk: string) => {
        this.lastHeard = performance.now();
        let texts: string[];
        try {
          texts = splitter.push(chunk);
        } catch (e) {
          this.log?.warn({ err: e }, 'ovsdb: bad data from server; reconnecting');
          sock.destroy();
          return;
        }
        for (const t of texts) this.onMessage(JSON.parse(t) as Record<string, unknown>);
      });
      sock.on('error', (e) => {
        if (!this.sock) reject(e);
      });
      sock.on('close', () => {
        const wasUp = this.sock === sock;
        this.sock = undefined;
        clearInterval(this.echoTimer);
        for (const [id, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(new OvsdbError('ovsdb connection lost'));
          this.pending.delete(id);
        }
        if (wasUp && !this.closed) this.reconnect();
      });
    });
  }

  private reconnect(): void {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, 8000);
    setTimeout(() => {
      if (this.closed) return;
      this.connect().then(
        () =>
          this.resync().catch((e: unknown) => {
            // Dropping the connection retries the whole resync; its 'close' schedules the reconnect.
            this.log?.warn({ err: e }, 'ovsdb: resync after reconnect failed; reconnecting');
            this.sock?.destroy();
          }),
        () => this.reconnect(),
      );
    }, delay).unref();
  }

  private async resync(): Promise<void> {
    this.cache.clear();
    for (const m of this.monitors) await this.startMonitor(m);
    this.log?.info({ path: this.path }, 'ovsdb: reconnected and resynced');
    this.emit('reconnected');
  }

  private startEcho(): void {
    const every = this.opts.echoMs ?? 5000;
    let due = performance.now() + every;
    this.echoTimer = setInterval(() => {
      const tick = due;
      due = performance.now() + every;
      // Timers run before the loop polls sockets: the check waits for what the server sent meanwhile (setImmediate runs after the poll).
      setImmediate(() => {
        if (this.closed) return;
        const now = performance.now();
        // Checked this late, our own loop was blocked (a long synchronous stretch, before the tick or
        // after it): we neither asked nor listened, so that silence says nothing about the server.
        if (now - tick > every / 2) this.lastHeard = Math.max(this.lastHeard, now);
        // No word from the server for two periods: the connection is dead even if the socket is not.
        else if (now - this.lastHeard > 2 * every) {
          this.sock?.destroy();
          return;
        }
        if (this.sock) this.request('echo', []).catch(() => undefined);
      });
    }, every);
    this.echoTimer.unref();
  }

  private onMessage(m: Record<string, unknown>): void {
    if (m.method === 'echo' && m.id !== undefined) {
      this.send({ id: m.id, result: m.params, error: null });
      return;
    }
    if (m.method === 'update') {
      this.applyUpdate((m.params as unknown[])[1] as TableUpdates);
      return;
    }
    if (m.method === 'update2') {
      const [id, updates] = m.params as [unknown, TableUpdates2];
      const mon = this.monitors.find((x) => x.id === id);
      if (mon?.types) this.applyUpdate2(mon, mon.types, updates);
      else this.log?.warn({ monitor: id }, 'ovsdb: update2 for a monitor we do not run; ignored');
      return;
    }
    const p = this.pending.get(m.id as number);
    if (!p) return;
    this.pending.delete(m.id as number);
    clearTimeout(p.timer);
    if (m.error) return p.reject(rpcError(m.error));
    try {
      p.onResult?.(m.result);
    } catch (e) {
      return p.reject(e as Error);
    }
    p.resolve(m.result);
  }

  private applyUpdate(u: TableUpdates): void {
    for (const [table, rows] of Object.entries(u)) {
      const t = this.cache.get(table) ?? new Map<string, Row>();
      for (const [uuid, change] of Object.entries(rows)) {
        if (change.new) t.set(uuid, { ...t.get(uuid), ...change.new });
        else t.delete(uuid);
      }
      this.cache.set(table, t);
    }
    this.emit('update', u);
  }

  /**
   * Applies <table-updates2> to the cache and emits the plain monitor's
   * 'update' for it: `new` the whole row, `old` the modified columns' old
   * values, as ovsdb/monitor.c ovsdb_monitor_compose_row_update does.
   */
  private applyUpdate2(m: Monitor, types: DbTypes, u: TableUpdates2): void {
    const event: TableUpdates = {};
    for (const [table, rows] of Object.entries(u)) {
      const t = this.cache.get(table) ?? new Map<string, Row>();
      const cols = types.get(table) ?? new Map<string, ColumnType>();
      const full = (row: Row) => withDefaults(row, m.spec.tables[table] ?? [], cols);
      const out: TableUpdates[string] = (event[table] = {});
      for (const [uuid, change] of Object.entries(rows)) {
        const whole = change.initial ?? change.insert;
        if (whole) {
          const row = full(whole);
          t.set(uuid, row);
          out[uuid] = { new: row };
        } else if (change.modify) {
          const before = t.get(uuid) ?? full({});
          const after = { ...before };
          const old: Row = {};
          for (const [col, diff] of Object.entries(change.modify)) {
            const type = cols.get(col);
            old[col] = before[col];
            after[col] = type ? applyDiff(before[col] ?? defaultDatum(type), diff, type) : diff;
          }
          t.set(uuid, after);
          out[uuid] = { old, new: after };
        } else {
          const old = t.get(uuid);
          t.delete(uuid);
          out[uuid] = old ? { old } : {};
        }
      }
      this.cache.set(table, t);
    }
    this.emit('update', event);
  }

  private send(msg: unknown): void {
    if (!this.sock) throw new OvsdbError('ovsdb not connected');
    this.sock.write(JSON.stringify(msg));
  }

  request(method: string, params: unknown[], onResult?: (result: unknown) => void): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // Judged after the loop has read the socket (setImmediate): a reply that came while our own loop was blocked is not a timeout.
      const timer = setTimeout(
        () =>
          setImmediate(() => {
            if (!this.pending.delete(id)) return;
            reject(new OvsdbError(`ovsdb ${method} timed out`));
          }),
        this.opts.timeoutMs ?? 10_000,
      );
      this.pending.set(id, { resolve, reject, timer, onResult });
      try {
        this.send({ method, params, id });
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(e as Error);
      }
    });
  }

  /** Runs ops in one transaction; any op error (constraint violation, timed-out wait...) rejects with it. */
  async transact(db: string, ops: Op[]): Promise<unknown[]> {
    const results = (await this.request('transact', [db, ...ops])) as (Record<string, unknown> | null)[];
    const bad = results.find((r) => r && 'error' in r);
    if (bad) throw new OvsdbError(`ovsdb transaction failed: ${String(bad.error)}${bad.details ? `: ${String(bad.details)}` : ''}`, bad);
    if (results.length > ops.length) throw new OvsdbError(`ovsdb transaction failed: ${String((results[ops.length] as Record<string, unknown>)?.error)}`);
    return results;
  }

  /** Column types of a database, fetched once per connection (get_schema, RFC 7047 4.1.2). */
  private schemaTypes(db: string): Promise<DbTypes> {
    let p = this.schemas.get(db);
    if (!p) {
      p = this.request('get_schema', [db]).then((s) => typesOf(s as Schema));
      p.catch(() => this.schemas.delete(db));
      this.schemas.set(db, p);
    }
    return p;
  }

  private async startMonitor(m: Monitor): Promise<void> {
    const { db, tables, where = {} } = m.spec;
    m.types = undefined;
    if (!this.noMonitorCond) {
      const types = await this.schemaTypes(db);
      const req: Record<string, { columns: string[]; where?: Condition[] }> = {};
      for (const [t, columns] of Object.entries(tables)) req[t] = where[t] ? { columns, where: where[t] } : { columns };
      try {
        await this.request('monitor_cond', [db, m.id, req], (initial) => {
          m.types = types;
          this.applyUpdate2(m, types, initial as TableUpdates2);
        });
        return;
      } catch (e) {
        // ovsdb/jsonrpc-server.c answers a method it does not know with the error "unknown method".
        if (!(e instanceof OvsdbError && e.details === 'unknown method')) throw e;
        this.noMonitorCond = true;
        this.log?.info({ path: this.path }, 'ovsdb: server has no monitor_cond; using plain monitor');
      }
    }
    if (Object.values(where).some((w) => w.length)) throw NO_CONDITIONS();
    const req: Record<string, { columns: string[] }> = {};
    for (const [t, columns] of Object.entries(tables)) req[t] = { columns };
    await this.request('monitor', [db, m.id, req], (initial) => this.applyUpdate(initial as TableUpdates));
  }

  /**
   * Starts a monitor and fills the cache with its initial rows; resolves to
   * its id (for setConditions). A monitor the server refuses is forgotten; one
   * cut by a lost connection is started again by the resync.
   */
  async monitor(spec: MonitorSpec): Promise<string> {
    const m: Monitor = { id: `vpf-m${this.nextMonitor++}`, spec: { ...spec, tables: { ...spec.tables }, ...(spec.where ? { where: { ...spec.where } } : {}) } };
    this.monitors.push(m);
    try {
      await this.startMonitor(m);
    } catch (e) {
      if (!isConnectionError(e)) this.monitors.splice(this.monitors.indexOf(m), 1);
      throw e;
    }
    return m.id;
  }

  /**
   * Changes the conditions of some tables of a monitor (by the order of
   * monitor() calls or by the id it returned) with monitor_cond_change
   * (ovsdb-server(7) 4.1.13); tables left out keep theirs. When it resolves
   * the cache already holds the change: the server sends the rows that
   * entered or left before its reply. Conditions set while disconnected
   * take effect at the resync.
   */
  async setConditions(monitor: number | string, where: Record<string, Condition[]>): Promise<void> {
    const m = typeof monitor === 'number' ? this.monitors[monitor] : this.monitors.find((x) => x.id === monitor);
    if (!m) throw new OvsdbError(`no monitor ${String(monitor)}`);
    const unknown = Object.keys(where).filter((t) => !(t in m.spec.tables));
    if (unknown.length) throw new OvsdbError(`monitor ${m.id} does not monitor ${unknown.join(', ')}`);
    if (this.noMonitorCond) throw NO_CONDITIONS();
    const before = m.spec.where;
    m.spec = { ...m.spec, where: { ...before, ...where } };
    // <monitor-cond-update-requests> maps each table to an ARRAY of {where} (ovsdb/jsonrpc-server.c refuses a bare object).
    const req = Object.fromEntries(Object.entries(where).map(([t, w]) => [t, [{ where: w }]]));
    try {
      // Keep the same id: updates need no telling apart, the cache follows whatever the server sends.
      await this.request('monitor_cond_change', [m.id, m.id, req]);
    } catch (e) {
      if (!isConnectionError(e)) m.spec = { ...m.spec, where: before };
      throw e;
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.echoTimer);
    this.sock?.destroy();
  }
}

/** The server can't filter: a refusal (with details, unlike a lost connection), never retried by a resync. */
const NO_CONDITIONS = () => new OvsdbError('ovsdb server has no monitor_cond: cannot monitor with conditions', { error: 'unknown method', method: 'monitor_cond' });

/** A JSON-RPC error: RFC 7047 <error> {error, details?}, or a bare string ("unknown method"). */
function rpcError(e: unknown): OvsdbError {
  const { error, details } = typeof e === 'object' && e !== null ? (e as { error?: unknown; details?: unknown }) : { error: e, details: undefined };
  return new OvsdbError(`${String(error ?? JSON.stringify(e))}${details ? `: ${String(details)}` : ''}`, e);
}

/** Errors from the server carry its <error> object; ours (not connected, lost, timed out) carry none. */
function isConnectionError(e: unknown): boolean {
  return e instanceof OvsdbError && e.details === undefined;
}

interface Schema {
  tables: Record<string, { columns: Record<string, { type: unknown }> }>;
}

function typesOf(schema: Schema): DbTypes {
  const out: DbTypes = new Map();
  for (const [t, { columns }] of Object.entries(schema.tables)) {
    out.set(t, new Map(Object.entries(columns).map(([c, { type }]) => [c, columnType(type)])));
  }
  return out;
}

/** RFC 7047 3.2 <type>: an atomic type name, or {key, value?, min?, max?}; min and max default to 1. */
function columnType(t: unknown): ColumnType {
  const base = (b: unknown) => (typeof b === 'string' ? b : (b as { type: string }).type) as Atomic;
  if (typeof t === 'string') return { key: t as Atomic, min: 1, max: 1 };
  const o = t as { key: unknown; value?: unknown; min?: number; max?: number | 'unlimited' };
  return {
    key: base(o.key),
    ...(o.value !== undefined ? { value: base(o.value) } : {}),
    min: o.min ?? 1,
    max: o.max === 'unlimited' ? Infinity : (o.max ?? 1),
  };
}

const ZERO_UUID = ['uuid', '00000000-0000-0000-0000-000000000000'];
const DEFAULT_ATOM: Record<Atomic, unknown> = { integer: 0, real: 0, boolean: false, string: '', uuid: ZERO_UUID };

/** A column's default (RFC 7047 5.1 / lib/ovsdb-data.c ovsdb_datum_init_default) in the monitor's encoding. */
function defaultDatum(type: ColumnType): unknown {
  if (type.value) return ['map', []];
  return type.min === 0 ? ['set', []] : DEFAULT_ATOM[type.key];
}

/** update2 leaves out columns at their default (ovsdb-server(7) 4.1.14); plain monitor sends them. */
function withDefaults(row: Row, columns: string[], types: Map<string, ColumnType>): Row {
  const out: Row = { ...row };
  for (const col of columns.length ? columns : types.keys()) {
    const type = types.get(col);
    if (!(col in out) && type) out[col] = defaultDatum(type);
  }
  return out;
}

/**
 * old + update2 diff -> new, as lib/ovsdb-data.c ovsdb_datum_apply_diff: a
 * column of at most one value carries its new value; in a set the diff's
 * elements toggle; in a map a pair with a new key is added, one equal to the
 * old pair removed, one with another value replaces it.
 */
function applyDiff(old: unknown, diff: unknown, type: ColumnType): unknown {
  if (type.max <= 1) return diff;
  const keyOf = (atom: unknown) => JSON.stringify(atom);
  if (type.value) {
    const pairs = new Map((old as [string, [unknown, unknown][]])[1].map((p) => [keyOf(p[0]), p]));
    for (const [k, v] of (diff as [string, [unknown, unknown][]])[1]) {
      const had = pairs.get(keyOf(k));
      if (had && keyOf(had[1]) === keyOf(v)) pairs.delete(keyOf(k));
      else pairs.set(keyOf(k), [k, v]);
    }
    return ['map', [...pairs.values()].sort((a, b) => compareAtoms(a[0], b[0], type.key))];
  }
  const elems = new Map(setElements(old).map((e) => [keyOf(e), e]));
  for (const e of setElements(diff)) {
    if (elems.has(keyOf(e))) elems.delete(keyOf(e));
    else elems.set(keyOf(e), e);
  }
  const sorted = [...elems.values()].sort((a, b) => compareAtoms(a, b, type.key));
  // lib/ovsdb-data.c ovsdb_datum_to_json: a one-element set is the bare atom.
  return sorted.length === 1 ? sorted[0] : ['set', sorted];
}

/** A set's elements: ["set", [...]] or, for one element, the bare atom. */
function setElements(v: unknown): unknown[] {
  return Array.isArray(v) && v[0] === 'set' ? (v[1] as unknown[]) : [v];
}

/**
 * OVSDB keeps sets and maps sorted (lib/ovsdb-data.c ovsdb_atom_compare_3way):
 * numbers by value, strings by strcmp (UTF-8 bytes), uuids as their text
 * (lib/uuid.c uuid_compare_3way). Sorting the same way keeps the cache equal
 * to what the server sends.
 */
function compareAtoms(a: unknown, b: unknown, type: Atomic): number {
  switch (type) {
    case 'integer':
    case 'real':
      return (a as number) - (b as number);
    case 'boolean':
      return Number(a) - Number(b);
    case 'string':
      return Buffer.compare(Buffer.from(a as string), Buffer.from(b as string));
    case 'uuid': {
      const x = (a as [string, string])[1];
      const y = (b as [string, string])[1];
      return x < y ? -1 : x > y ? 1 : 0;
    }
  }
}

/** OVSDB atoms: ["set", [...]], ["map", [[k, v], ...]], ["named-uuid", n], ["uuid", u]. */
export const ovs = {
  set: (xs: unknown[]) => ['set', xs],
  map: (o: Record<string, string>) => ['map', Object.entries(o)],
  named: (n: string) => ['named-uuid', n],
  uuid: (u: string) => ['uuid', u],
};
