// ovs-vswitchd's control socket spoken directly: unixctl is JSON-RPC 1.0 over
// a unix stream (lib/unixctl.c), the same framing as OVSDB. One connection,
// requests answered in order; no `ovs-appctl` process per call, which matters
// when a stats request traces every new datapath flow.
import { existsSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { JsonSplitter } from './ovsdb/framing.js';

export class UnixctlError extends Error {}

interface Waiter {
  resolve(text: string): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export class UnixctlClient {
  private sock: Socket | undefined;
  private connecting: Promise<Socket> | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();

  constructor(
    /** The unixctl socket, e.g. /var/run/openvswitch/ovs-vswitchd.PID.ctl. */
    private readonly path: () => string,
    private readonly timeoutMs = 10_000,
  ) {}

  /** Runs one command (`ovs-appctl METHOD ARGS...`); resolves with its text, rejects with OVS's error text. */
  async call(method: string, ...params: string[]): Promise<string> {
    const sock = await this.open();
    const id = this.nextId++;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new UnixctlError(`${method}: no answer from ovs-vswitchd in ${this.timeoutMs} ms`));
        sock.destroy();
      }, this.timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
      sock.write(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.sock?.destroy();
    this.sock = undefined;
  }

  private open(): Promise<Socket> {
    if (this.sock && !this.sock.destroyed) return Promise.resolve(this.sock);
    // A restarted ovs-vswitchd has a new socket path (its pid is in the name): ask again on every connect.
    return (this.connecting ??= new Promise<Socket>((resolve, reject) => {
      const sock = connect(this.path());
      const splitter = new JsonSplitter();
      sock.setEncoding('utf8');
      sock.once('connect', () => {
        this.sock = sock;
        this.connecting = undefined;
        resolve(sock);
      });
      sock.on('data', (chunk: string) => {
        let texts: string[];
        try {
          texts = splitter.push(chunk);
        } catch {
          sock.destroy();
          return;
        }
        for (const t of texts) this.answer(JSON.parse(t) as { id?: number; result?: unknown; error?: unknown });
      });
      sock.on('error', (e) => {
        if (this.connecting) {
          this.connecting = undefined;
          reject(e);
        }
      });
      sock.on('close', () => {
        if (this.sock === sock) this.sock = undefined;
        for (const [id, w] of this.waiting) {
          clearTimeout(w.timer);
          w.reject(new UnixctlError('ovs-vswitchd closed its control connection'));
          this.waiting.delete(id);
        }
      });
    }));
  }

  private answer(m: { id?: number; result?: unknown; error?: unknown }): void {
    const w = m.id === undefined ? undefined : this.waiting.get(m.id);
    if (!w) return;
    this.waiting.delete(m.id!);
    clearTimeout(w.timer);
    if (m.error !== null && m.error !== undefined) w.reject(new UnixctlError(String(m.error).trim()));
    else w.resolve(String(m.result ?? ''));
  }
}

/**
 * ovs-vswitchd's control socket in `rundir`, found as ovs-appctl -t finds it:
 * `ovs-vswitchd.ctl` where --unixctl named it so, else `ovs-vswitchd.<pid>.ctl`.
 */
export function vswitchdCtlPath(rundir: string): string {
  const fixed = join(rundir, 'ovs-vswitchd.ctl');
  if (existsSync(fixed)) return fixed;
  const pid = readFileSync(join(rundir, 'ovs-vswitchd.pid'), 'utf8').trim();
  return join(rundir, `ovs-vswitchd.${pid}.ctl`);
}
