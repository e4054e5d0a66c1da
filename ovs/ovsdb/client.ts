// An OVSDB client (RFC 7047 JSON-RPC over a unix socket): transact, monitor
// with a local cache kept by `update` notifications, echo both ways, and
// reconnect with backoff; after a reconnect it re-monitors, rebuilds the cache
// and emits 'reconnected' so the daemon can reconcile.
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
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
}

export interface MonitorSpec {
  db: string;
  tables: Record<string, string[]>;
}

export class OvsdbClient extends EventEmitter {
  private sock: Socket | undefined;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private monitors: MonitorSpec[] = [];
  private closed = false;
  private backoffMs = 100;
  private echoTimer: NodeJS.Timeout | undefined;
  private lastHeard = Date.now();
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
        this.lastHeard = Date.now();
        this.startEcho();
        resolve();
      });
      sock.on('data', (chunk: string) => {
        this.lastHeard = Date.now();
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
      this.connect()
        .then(async () => {
          this.cache.clear();
          for (const m of this.monitors) await this.startMonitor(m);
          this.log?.info({ path: this.path }, 'ovsdb: reconnected and resynced');
          this.emit('reconnected');
        })
        .catch(() => this.reconnect());
    }, delay).unref();
  }

  private startEcho(): void {
    const every = this.opts.echoMs ?? 5000;
    this.echoTimer = setInterval(() => {
      // No word from the server for two periods: the connection is dead even if the socket is not.
      if (Date.now() - this.lastHeard > 2 * every) {
        this.sock?.destroy();
        return;
      }
      this.request('echo', []).catch(() => undefined);
    }, every);
    this.echoTimer.unref();
  }

  private onMessage(m: Record<string, unknown>): void {
    if (m.method === 'echo' && m.id !== undefined) {
      this.send({ id: m.id, result: m.params, error: null });
      return;
    }
    if (m.method === 'update') {
      this.applyUpdate((m.params as unknown[])[1] as Record<string, Record<string, { new?: Row; old?: Row }>>);
      return;
    }
    const p = this.pending.get(m.id as number);
    if (!p) return;
    this.pending.delete(m.id as number);
    clearTimeout(p.timer);
    if (m.error) p.reject(new OvsdbError(String((m.error as { error?: string }).error ?? m.error), m.error));
    else p.resolve(m.result);
  }

  private applyUpdate(u: Record<string, Record<string, { new?: Row; old?: Row }>>): void {
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

  private send(msg: unknown): void {
    if (!this.sock) throw new OvsdbError('ovsdb not connected');
    this.sock.write(JSON.stringify(msg));
  }

  request(method: string, params: unknown[]): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new OvsdbError(`ovsdb ${method} timed out`));
      }, this.opts.timeoutMs ?? 10_000);
      this.pending.set(id, { resolve, reject, timer });
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

  private async startMonitor(m: MonitorSpec): Promise<void> {
    const req: Record<string, { columns: string[] }> = {};
    for (const [t, cols] of Object.entries(m.tables)) req[t] = { columns: cols };
    const initial = (await this.request('monitor', [m.db, null, req])) as Record<string, Record<string, { new?: Row }>>;
    this.applyUpdate(initial);
  }

  async monitor(m: MonitorSpec): Promise<void> {
    this.monitors.push(m);
    await this.startMonitor(m);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.echoTimer);
    this.sock?.destroy();
  }
}

/** OVSDB atoms: ["set", [...]], ["map", [[k, v], ...]], ["named-uuid", n], ["uuid", u]. */
export const ovs = {
  set: (xs: unknown[]) => ['set', xs],
  map: (o: Record<string, string>) => ['map', Object.entries(o)],
  named: (n: string) => ['named-uuid', n],
  uuid: (u: string) => ['uuid', u],
};
