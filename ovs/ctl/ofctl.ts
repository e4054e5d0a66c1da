// OpenFlow through ovs-ofctl: the installer applies a diff in one atomic,
// ordered bundle (deletes then adds, so a replaced rule never leaves a gap)
// and reads flows back with their counters. Meters go outside the bundle: OVS
// cannot bundle meter mods (lib/ofp-bundle.c). An interface, so a native
// OpenFlow connection can replace it.
import { execa } from 'execa';
import { flowLine, meterLine, type OfMeter } from '../openflow/flow.js';
import type { FlowDiff, InstalledFlow } from '../openflow/diff.js';

export interface FlowInstaller {
  dump(): Promise<InstalledFlow[]>;
  apply(diff: FlowDiff): Promise<void>;
  /** Adds or modifies `meters` (before the flows that use them arrive). */
  putMeters(meters: OfMeter[]): Promise<void>;
  /** Deletes every meter not in `keep`: only after the flows that used them are gone, since OVS deletes a meter's flows with it. */
  pruneMeters(keep: number[]): Promise<void>;
  /** Counters of every OpenFlow port. */
  portStats(): Promise<Map<number, PortStats>>;
  /** OFPMP_METER_STATS of every meter, by meter id (optional: an installer without meters has none). */
  meterStats?(): Promise<Map<number, MeterStats>>;
  /** Releases a persistent connection, if the installer keeps one. */
  close?(): Promise<void>;
  /** Flow mods sent over a native connection and through ovs-ofctl, when the installer has both ways. */
  readonly counters?: { nativeFlowMods: number; fallbackFlowMods: number };
  /** Why the last diff went through ovs-ofctl. */
  readonly lastFallback?: Error | undefined;
}

/** OFPST_PORT counters, as the bridge sees them (rx = received from the port). */
export interface PortStats {
  rxPackets: number;
  rxBytes: number;
  rxDropped: number;
  txPackets: number;
  txBytes: number;
  txDropped: number;
}

/** Parses `ovs-ofctl dump-ports` ("port  3: rx pkts=1, bytes=2, drop=0, ..." then "tx pkts=..."). */
export function parseDumpPorts(text: string): Map<number, PortStats> {
  const out = new Map<number, PortStats>();
  let cur: PortStats | undefined;
  const num = (line: string, k: string) => Number(new RegExp(`\\b${k}=(\\d+)`).exec(line)?.[1] ?? 0);
  for (const line of text.split('\n')) {
    const port = /^\s*port\s+(\w+):\s*rx\b/.exec(line);
    if (port) {
      cur = { rxPackets: num(line, 'pkts'), rxBytes: num(line, 'bytes'), rxDropped: num(line, 'drop'), txPackets: 0, txBytes: 0, txDropped: 0 };
      if (/^\d+$/.test(port[1]!)) out.set(Number(port[1]), cur);
    } else if (cur && /^\s*tx\b/.test(line)) {
      Object.assign(cur, { txPackets: num(line, 'pkts'), txBytes: num(line, 'bytes'), txDropped: num(line, 'drop') });
      cur = undefined;
    }
  }
  return out;
}

/** OFPMP_METER_STATS (OpenFlow 1.5 section 7.3.5.12): what entered the meter, and per band what it took. */
export interface MeterStats {
  packets: number;
  bytes: number;
  bands: { packets: number; bytes: number }[];
}

/**
 * Parses `ovs-ofctl meter-stats` (lib/ofp-meter.c ofputil_format_meter_stats:
 * "meter:1 flow_count:1 packet_in_count:5 byte_in_count:500 duration:1.2s bands:"
 * then one "0: packet_count:2 byte_count:200" line per band).
 */
export function parseMeterStats(text: string): Map<number, MeterStats> {
  const out = new Map<number, MeterStats>();
  let cur: MeterStats | undefined;
  const num = (line: string, k: string) => Number(new RegExp(`\\b${k}:(\\d+)`).exec(line)?.[1] ?? 0);
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const m = /^meter:(\d+)\s/.exec(line);
    if (m) out.set(Number(m[1]), (cur = { packets: num(line, 'packet_in_count'), bytes: num(line, 'byte_in_count'), bands: [] }));
    else if (cur && /^\d+:\s*packet_count:/.test(line)) cur.bands.push({ packets: num(line, 'packet_count'), bytes: num(line, 'byte_count') });
    else cur = undefined;
  }
  return out;
}

/** OVS refused a flow or meter mod: an atomic bundle then applied nothing. */
export interface Refusal {
  /** OVS's error, e.g. OFPMMFC_INVALID_METER. */
  code: string;
  /** The cookie of the flow OVS named in its error, when it named one. */
  cookie?: bigint;
}

/**
 * Any failure leaves OVS in an unknown state (a timed-out bundle may have
 * committed): reconcile from a dump. A `refused` one is OVS's answer to what
 * was sent, so nothing of an atomic bundle applied.
 */
export class InstallError extends Error {
  readonly refused: Refusal | undefined;
  constructor(message: string, opts: { cause?: unknown; refused?: Refusal } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.refused = opts.refused;
  }
}

/**
 * OVS's refusal in ovs-ofctl's stderr. Of a bundle: "Error OFPMMFC_INVALID_METER
 * for: OFPT_FLOW_MOD (OF1.5) (xid=0x6): ADD priority=6,tcp cookie:0x20...
 * actions=..." (ofp-print of the refused message); of a single request (a
 * meter mod): "OFPT_ERROR (OF1.5) (xid=0x2): OFPMMFC_BAD_BAND". Undefined when
 * ovs-ofctl failed otherwise.
 */
export function parseRefusal(stderr: string): Refusal | undefined {
  const m = /^Error (OFP\w+) for: (.*)$/m.exec(stderr);
  if (!m) {
    const single = /^OFPT_ERROR \(OF[\d.]+\) \(xid=0x[0-9a-f]+\): (OFP\w+)/m.exec(stderr);
    return single ? { code: single[1]! } : undefined;
  }
  const cookie = /^OFPT_FLOW_MOD\b.*?\bcookie:(0x[0-9a-f]+)/.exec(m[2]!)?.[1];
  return { code: m[1]!, ...(cookie ? { cookie: BigInt(cookie) } : {}) };
}

/** Parses `ovs-ofctl dump-flows` lines (ovs-ofctl(8) flow syntax with counters). */
export function parseDumpFlows(text: string): InstalledFlow[] {
  const out: InstalledFlow[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('cookie=')) continue;
    const act = line.indexOf(' actions=');
    const head = line.slice(0, act);
    const actions = line.slice(act + ' actions='.length);
    const fields = new Map<string, string>();
    const matchParts: string[] = [];
    let priority = 32768;
    for (const part of head.split(/,\s*|\s+/).filter(Boolean)) {
      const eq = part.indexOf('=');
      const k = eq < 0 ? part : part.slice(0, eq);
      const v = eq < 0 ? '' : part.slice(eq + 1);
      if (['cookie', 'duration', 'table', 'n_packets', 'n_bytes', 'idle_age', 'hard_age', 'idle_timeout', 'hard_timeout', 'importance', 'reset_counts', 'send_flow_rem', 'no_packet_counts', 'no_byte_counts'].includes(k)) fields.set(k, v);
      else if (k === 'priority') priority = Number(v);
      else matchParts.push(part);
    }
    out.push({
      cookie: BigInt(fields.get('cookie') ?? '0'),
      table: Number(fields.get('table') ?? 0),
      priority,
      match: matchParts.join(','),
      actions,
      packets: Number(fields.get('n_packets') ?? 0),
      bytes: Number(fields.get('n_bytes') ?? 0),
      durationSec: parseFloat(fields.get('duration') ?? '0'),
      idleAgeSec: Number(fields.get('idle_age') ?? fields.get('duration')?.replace('s', '') ?? 0),
    });
  }
  return out;
}

export class OfctlInstaller implements FlowInstaller {
  constructor(
    /** `unix:<rundir>/<bridge>.mgmt` or a bridge name. */
    private readonly target: string,
    private readonly env: Record<string, string> = {},
  ) {}

  private async ofctl(args: string[], input?: string): Promise<string> {
    const r = await execa('ovs-ofctl', ['-O', 'OpenFlow15', ...args], { env: this.env, reject: false, timeout: 60_000, ...(input !== undefined ? { input } : {}) });
    if (r.exitCode !== 0) {
      const text = (r.stderr || r.stdout).toString();
      const refused = parseRefusal(text);
      throw new InstallError(`ovs-ofctl ${args[0]}: ${refused ? `OVS refused it: ${refused.code}` : text.split('\n')[0]}`, refused ? { refused } : {});
    }
    return r.stdout.toString();
  }

  async dump(): Promise<InstalledFlow[]> {
    return parseDumpFlows(await this.ofctl(['dump-flows', this.target]));
  }

  async apply(diff: FlowDiff): Promise<void> {
    if (!diff.add.length && !diff.del.length) return;
    const lines = [...diff.del.map((c) => `delete cookie=0x${c.toString(16)}/-1`), ...diff.add.map((f) => `add ${flowLine(f)}`)];
    // ovs-ofctl waits for the bundle commit reply: when it returns, OVS has the flows (our barrier).
    await this.ofctl(['--bundle', 'add-flows', this.target, '-'], lines.join('\n') + '\n');
  }

  /** The bridge's meters, id -> spec as meterLine writes it (dump-meters prints each band on a line of its own). */
  private async meterIds(): Promise<Map<number, string>> {
    const have = new Map<number, string>();
    let id: number | undefined;
    for (const raw of (await this.ofctl(['dump-meters', this.target])).split('\n')) {
      const line = raw.trim();
      const m = /^meter=(\d+)\s+(.*)$/.exec(line);
      if (m) have.set((id = Number(m[1])), m[2]!);
      else if (id !== undefined && line.startsWith('type=')) have.set(id, `${have.get(id)!}${have.get(id)!.endsWith('=') ? '' : ' '}${line}`);
    }
    return have;
  }

  async putMeters(meters: OfMeter[]): Promise<void> {
    if (!meters.length) return;
    const have = await this.meterIds();
    // A mod-meter refills the meter's buckets and zeroes its counters (dpif-netdev and the kernel datapath
    // replace the meter): a meter that is already as wanted is left alone, or every reconcile would reset it.
    // One meter OVS refuses leaves the others to be put: the first refusal is thrown after them.
    let refused: InstallError | undefined;
    for (const m of meters) {
      if (have.get(m.id) === m.spec) continue;
      try {
        await this.ofctl([have.has(m.id) ? 'mod-meter' : 'add-meter', this.target, meterLine(m)]);
      } catch (e) {
        if (!(e instanceof InstallError && e.refused)) throw e;
        refused ??= e;
      }
    }
    if (refused) throw refused;
  }

  async pruneMeters(keep: number[]): Promise<void> {
    const wanted = new Set(keep);
    for (const id of (await this.meterIds()).keys()) if (!wanted.has(id)) await this.ofctl(['del-meter', this.target, `meter=${id}`]);
  }

  async portStats(): Promise<Map<number, PortStats>> {
    return parseDumpPorts(await this.ofctl(['dump-ports', this.target]));
  }

  async meterStats(): Promise<Map<number, MeterStats>> {
    return parseMeterStats(await this.ofctl(['meter-stats', this.target]));
  }
}
