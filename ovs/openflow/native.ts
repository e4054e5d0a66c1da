// FlowInstaller over a persistent OpenFlow connection: a diff becomes one
// atomic, ordered bundle (deletes by cookie, then adds), as OfctlInstaller's
// `ovs-ofctl --bundle add-flows` does, without a process per request. Flows
// are values encoded directly (encode.ts); a diff with a flow the encoder
// cannot encode (no translator emits one: test/ovs/encode.test.ts and
// native.test.ts prove it) goes whole through the ovs-ofctl installer as its
// printed lines, counted in `fallbackApplies`. Dumps, meters, port and meter stats
// are rare and stay with ovs-ofctl.
import { InstallError, type FlowInstaller, type MeterStats, type OfctlInstaller, type PortStats } from '../ctl/ofctl.js';
import type { FlowDiff, InstalledFlow } from './diff.js';
import type { OfMeter } from './flow.js';
import { ConnectionLost, OpenFlowConnection, OpenFlowError, type ConnectionOptions } from './conn.js';
import { encodeDeleteByCookie, encodeFlowMod, UnsupportedFlow } from './encode.js';

export interface NativeCounters {
  /** Diffs applied as a native bundle. */
  nativeApplies: number;
  /** Diffs handed to ovs-ofctl because a flow was not encodable natively. */
  fallbackApplies: number;
  /** Flow mods (deletes + adds) sent natively / through the fallback. */
  nativeFlowMods: number;
  fallbackFlowMods: number;
}

export class NativeInstaller implements FlowInstaller {
  readonly counters: NativeCounters = { nativeApplies: 0, fallbackApplies: 0, nativeFlowMods: 0, fallbackFlowMods: 0 };
  /** Why the last fallback happened (for logs): the construct that was not encodable. */
  lastFallback: UnsupportedFlow | undefined;
  private readonly conn: OpenFlowConnection;
  /** Applies run one at a time, in call order, as the ovs-ofctl installer's do. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    /** `unix:<rundir>/<bridge>.mgmt` (or the plain path). */
    readonly target: string,
    private readonly fallback: OfctlInstaller,
    opts: ConnectionOptions = {},
  ) {
    this.conn = new OpenFlowConnection(target, opts);
  }

  apply(diff: FlowDiff): Promise<void> {
    const run = this.queue.then(() => this.applyNow(diff));
    this.queue = run.catch(() => {});
    return run;
  }

  private async applyNow(diff: FlowDiff): Promise<void> {
    if (!diff.add.length && !diff.del.length) return;
    const mods = diff.del.length + diff.add.length;
    let messages: Buffer[];
    try {
      messages = [...diff.del.map(encodeDeleteByCookie), ...diff.add.map((f) => encodeFlowMod(f, 'add'))];
    } catch (e) {
      if (!(e instanceof UnsupportedFlow)) throw e;
      this.lastFallback = e;
      this.counters.fallbackApplies++;
      this.counters.fallbackFlowMods += mods;
      return this.fallback.apply(diff);
    }
    try {
      // Reconnect lazily: a bridge or ovs-vswitchd restart costs the next apply one handshake.
      await this.conn.connect();
      await this.conn.bundle(messages);
    } catch (e) {
      if (e instanceof OpenFlowError) {
        // Deletes come first in the bundle, then the adds: the refused message's place names its flow.
        const i = (e.bundleIndex ?? -1) - diff.del.length;
        const cookie = i >= 0 ? diff.add[i]?.cookie : undefined;
        throw new InstallError(`OpenFlow bundle refused: ${e.message}`, { cause: e, refused: { code: e.codeName, ...(cookie !== undefined ? { cookie } : {}) } });
      }
      // Lost mid-bundle: a commit may or may not have applied, so no retry here; the caller reconciles from a dump.
      await this.conn.close().catch(() => {});
      const why = e instanceof ConnectionLost ? e.message : `OpenFlow connection failed: ${(e as Error).message}`;
      throw new InstallError(why, { cause: e });
    }
    this.counters.nativeApplies++;
    this.counters.nativeFlowMods += mods;
  }

  dump(): Promise<InstalledFlow[]> {
    return this.fallback.dump();
  }

  putMeters(meters: OfMeter[]): Promise<void> {
    return this.fallback.putMeters(meters);
  }

  pruneMeters(keep: number[]): Promise<void> {
    return this.fallback.pruneMeters(keep);
  }

  portStats(): Promise<Map<number, PortStats>> {
    return this.fallback.portStats();
  }

  meterStats(): Promise<Map<number, MeterStats>> {
    return this.fallback.meterStats();
  }

  /** Closes the OpenFlow connection (the daemon calls it when the VM goes). */
  close(): Promise<void> {
    return this.conn.close();
  }
}
