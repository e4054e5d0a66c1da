// The offload tier's VM: Debian's stock kernel under qemu (TCG) runs the host's
// own Open vSwitch (shared read-only over virtio-9p) with a kernel-datapath
// bridge, hw-offload=true and tc-policy=skip_hw, so that every datapath flow
// OVS would push into a NIC becomes a software tc flower filter (dp:tc), as in
// OVS's tests/system-offloads-traffic.at. One boot runs many sets of flows and
// frames; scripts/kernelvm/ holds the build (deps.sh), the guest side and the probe.
import { execa } from 'execa';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDpctlFlows, type DatapathFlow } from '../../ovs/ctl/offload.js';
import { defaultPortMap, repNames, portPair, type PortMap } from '../../translator/portmap.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const KVM = join(ROOT, 'scripts/kernelvm');

export interface OffloadFrame {
  /** Bridge port the frame enters on (see bridgePorts). */
  port: string;
  hex: string;
  /** Sent with conntrack as the frames before it left it (else the table is emptied first): a reply after its request. */
  keepCt?: boolean;
}

export interface OffloadSet {
  name: string;
  /** ovs-ofctl add-flows lines, loaded as one bundle. */
  flows: string[];
  /** ovs-ofctl add-meter arguments. */
  meters?: string[];
  frames: OffloadFrame[];
}

/**
 * Which kernel the VM boots: Debian's stock one, or the same source and config
 * with CONFIG_NET_TC_SKB_EXT=y (scripts/kernelvm/skbext.sh), on which OVS's tc
 * offload takes flows that recirculate (`ct ... goto chain`).
 */
export type KernelFlavor = 'stock' | 'skbext';

export interface OffloadOptions {
  ports?: PortMap;
  flavor?: KernelFlavor;
  /** Sends of each frame; the first one normally misses (upcall). Default 2. */
  passes?: number;
  /** Keep the run directory (printed). */
  keep?: boolean;
}

/** One send of a frame: which part of the datapath handled it and what came out. */
export interface Pass {
  /** '+'-joined parts: 'upcall' (missed), 'tc' (an OVS tc filter counted it), 'ovs' (a kernel datapath flow); or 'none'. */
  path: string;
  hit: number;
  missed: number;
  lost: number;
  out: { port: string; hex: string }[];
  /** Ufids of the tc filters / kernel flows that counted it. */
  tc: string[];
  kernel: string[];
  error?: string;
}

export interface DpFlow extends DatapathFlow {
  ufid: string;
}

/** A datapath flow OVS tried and failed to offload, with the log lines that said why. */
export interface OffloadFailure {
  ufid: string;
  error: string;
  reasons: string[];
}

export interface FrameResult extends OffloadFrame {
  passes: Pass[];
  last: Pass;
  /** The datapath flows that handled the last pass. */
  flows: DpFlow[];
}

export interface SetResult {
  name: string;
  /** '' when every meter and the flow bundle loaded. */
  loadError: string;
  frames: FrameResult[];
  dpFlows: DpFlow[];
  failures: OffloadFailure[];
  log: string;
}

export interface OffloadRun {
  kernel: string;
  ovsVersion: string;
  sets: SetResult[];
  /** Guest uptime marks (s): init, ready (OVS up), set0..., end; and the wall time (s). */
  timing: Record<string, number>;
}

/** Bridge port names for a port map: `uplink`/`vfN` (the wire/VF side) and `uplinkrep`/`vfNrep` (representor backends). */
export function bridgePorts(ports: PortMap): Map<string, number> {
  const out = new Map<string, number>();
  for (const dev of repNames(ports)) {
    const p = portPair(ports, dev)!;
    out.set(dev, p.port);
    out.set(`${dev}rep`, p.rep);
  }
  return out;
}

/** Builds (or checks, ~1 s) what the VM needs; returns the cache directory of the kernel. */
export async function ensureKernelVm(flavor: KernelFlavor = 'stock'): Promise<string> {
  const r = await execa('bash', [join(KVM, 'deps.sh'), flavor], { reject: false });
  if (r.exitCode !== 0) throw new Error(`scripts/kernelvm/deps.sh failed:\n${r.stderr.toString().slice(-3000)}`);
  return r.stdout.toString().trim().split('\n').pop()!;
}

export async function runOffload(sets: OffloadSet[], opts: OffloadOptions = {}): Promise<OffloadRun> {
  const t0 = Date.now();
  const cache = await ensureKernelVm(opts.flavor);
  const ports = bridgePorts(opts.ports ?? defaultPortMap(2));
  const passes = opts.passes ?? 2;
  const run = mkdtempSync('/tmp/vpf-offload-');
  try {
    writeGuest(run, 'guest.sh', ports);
    writeFileSync(
      join(run, 'config'),
      [`NSETS=${sets.length}`, `PASSES=${passes}`, `PROBE=${join(cache, 'probe')}`, 'SETTLE_MS=20', 'UPCALL_MS=1500'].join('\n') + '\n',
      { flag: 'a' },
    );
    sets.forEach((s, i) => {
      const d = join(run, `set${i}`);
      mkdirSync(d);
      // "delete" first: the bundle replaces the whole table atomically
      writeFileSync(join(d, 'flows'), ['delete', ...s.flows].join('\n') + '\n');
      writeFileSync(join(d, 'meters'), (s.meters ?? []).map((m) => m + '\n').join(''));
      for (const f of s.frames) if (!ports.has(f.port)) throw new Error(`set ${s.name}: no bridge port ${f.port}`);
      writeFileSync(join(d, 'frames'), s.frames.map((f) => `${f.port} ${f.hex}${f.keepCt ? ' keep' : ''}\n`).join(''));
    });
    const nFrames = sets.reduce((n, s) => n + s.frames.length, 0);
    // generous: the machine's 2 cores are shared and TCG is ~10x slower than KVM
    const txt = await bootKernelVm(cache, run, (90 + 6 * sets.length + 0.5 * nFrames * passes) * 1000, opts);
    const timing: Record<string, number> = { wall: (Date.now() - t0) / 1000 };
    for (const l of txt('timing').split('\n')) {
      const [k, v] = l.split(' ');
      if (k && v) timing[k] = Number(v);
    }
    return {
      kernel: txt('kernel').trim(),
      ovsVersion: txt('ovs-version').trim(),
      timing,
      sets: sets.map((s, i) => readSet(s, (p) => txt(`set${i}/${p}`))),
    };
  } finally {
    if (opts.keep) console.error(`offload run dir kept: ${run}`);
    else rmSync(run, { recursive: true, force: true });
  }
}

/**
 * Lays a guest script and the OVS bring-up it sources (ovs-up.sh) into the run
 * directory (the guest's /tmp is a tmpfs: they travel in the 9p share) with
 * the bridge ports in its config.
 */
export function writeGuest(run: string, script: string, ports: Map<string, number>): void {
  for (const f of [script, 'ovs-up.sh']) copyFileSync(join(KVM, f), join(run, f));
  writeFileSync(join(run, 'guest'), `/tmp/vpf/${script}\n`);
  writeFileSync(join(run, 'config'), `PORTS="${[...ports].map(([n, no]) => `${n}:${no}`).join(' ')}"\nREPO=${ROOT}\n`);
}

/**
 * Boots the stock kernel with the host's root shared read-only and `run`
 * read-write; the guest runs the script writeGuest named. Returns a reader of
 * the files the guest left in `run`; throws with the guest's last words when
 * OVS did not come up.
 */
export async function bootKernelVm(cache: string, run: string, timeoutMs: number, opts: { keep?: boolean } = {}): Promise<(p: string) => string> {
  const kernel = existsSync(join(cache, 'vmlinux')) ? join(cache, 'vmlinux') : join(cache, 'vmlinuz');
  const q = await execa(
    'qemu-system-x86_64',
    [
      '-accel', process.env.VPF_KERNELVM_ACCEL ?? 'tcg', '-M', 'pc', '-m', '1G', '-smp', '1',
      '-nodefaults', '-no-user-config', '-nographic', '-no-reboot', '-monitor', 'none',
      '-serial', `file:${join(run, 'console.log')}`,
      '-kernel', kernel, '-initrd', join(cache, 'initramfs.cpio'),
      '-append', 'console=ttyS0 panic=-1 quiet loglevel=4 rdinit=/init',
      '-virtfs', 'local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap,id=host',
      '-virtfs', `local,path=${run},mount_tag=run,security_model=none,id=run`,
      // The checkout by itself too: a clone under /tmp is hidden by the guest's tmpfs there.
      '-virtfs', `local,path=${ROOT},mount_tag=repo,security_model=none,readonly=on,multidevs=remap,id=repo`,
    ],
    { reject: false, timeout: timeoutMs, stdin: 'ignore' },
  );
  const txt = (p: string) => (existsSync(join(run, p)) ? readFileSync(join(run, p), 'utf8') : '');
  if (!txt('kernel') || txt('setup.rc').trim() !== '0') {
    opts.keep = true;
    throw new Error(
      `offload VM failed (qemu exit ${q.exitCode}${q.timedOut ? ', timed out' : ''}); run dir ${run}\n` +
        `${txt('guest.log').slice(-2000)}\n${txt('setup.out').slice(-2000)}\n${txt('console.log').slice(-2000)}`,
    );
  }
  return txt;
}

function readSet(s: OffloadSet, txt: (p: string) => string): SetResult {
  const errs: string[] = [];
  (s.meters ?? []).forEach((m, k) => {
    if (txt(`meter${k}.rc`).trim() !== '0') errs.push(`meter ${m}: ${txt(`meter${k}.out`).trim()}`);
  });
  if (txt('flows.rc').trim() !== '0') errs.push(`flows: ${txt('flows.out').trim() || 'not loaded'}`);
  const dpFlows = parseDpFlows(txt('dp'));
  const byUfid = new Map(dpFlows.map((f) => [f.ufid, f]));
  const probe = parseProbe(txt('probe'));
  const frames = s.frames.map((f, n): FrameResult => {
    const passes = probe[n] ?? [];
    const last = passes.at(-1) ?? { path: 'none', hit: 0, missed: 0, lost: 0, out: [], tc: [], kernel: [], error: 'no result' };
    const flows = [...last.tc, ...last.kernel].map((u) => byUfid.get(u)).filter((x): x is DpFlow => x !== undefined);
    return { ...f, passes, last, flows };
  });
  const log = txt('log');
  return { name: s.name, loadError: errs.join('\n'), frames, dpFlows, failures: offloadFailures(log), log };
}

/** dpctl/dump-flows -m lines that carry a ufid (all of them with -m). */
export function parseDpFlows(text: string): DpFlow[] {
  return parseDpctlFlows(text).filter((f): f is DpFlow => f.ufid !== undefined);
}

/** probe.c's output -> passes per frame (frames numbered from 1). */
export function parseProbe(text: string): Pass[][] {
  const frames: Pass[][] = [];
  let cur: Pass | undefined;
  for (const line of text.split('\n')) {
    const w = line.split(' ');
    if (w[0] === 'P') {
      cur = { path: 'none', hit: 0, missed: 0, lost: 0, out: [], tc: [], kernel: [] };
      (frames[Number(w[1]) - 1] ??= []).push(cur);
    } else if (!cur) continue;
    else if (w[0] === 'R') cur.out.push({ port: w[1]!, hex: w[2] ?? '' });
    else if (w[0] === 'T') cur.tc.push(w[1]!);
    else if (w[0] === 'K') cur.kernel.push(w[1]!);
    else if (w[0] === 'S') {
      for (const kv of w.slice(1)) {
        const [k, v] = kv.split('=');
        if (k === 'hit' || k === 'missed' || k === 'lost') cur[k] = Number(v);
        if (k === 'error') cur.error = v;
      }
    }
    if (cur && (w[0] === 'S' || w[0] === 'T' || w[0] === 'K')) cur.path = passPath(cur);
  }
  return frames;
}

function passPath(p: Pass): string {
  const parts = [p.tc.length ? 'tc' : '', p.kernel.length || p.hit ? 'ovs' : '', p.missed ? 'upcall' : '', p.lost ? 'lost' : ''].filter(Boolean);
  return parts.join('+') || 'none';
}

const LOG = /^\S+\|\d+\|([\w-]+)(?:\([^)]*\))?\|([A-Z]+)\|(.*)$/;

/**
 * dpif_netlink tries tc first (netdev_offload_tc and tc log why they refuse),
 * says "failed to offload flow", then logs the put of that flow (with its ufid)
 * into the kernel datapath: reasons since the last put belong to the next one.
 */
export function offloadFailures(log: string): OffloadFailure[] {
  const out: OffloadFailure[] = [];
  let reasons: string[] = [];
  let error = '';
  for (const line of log.split('\n')) {
    const m = LOG.exec(line);
    if (!m) continue;
    const [, mod, , msg] = m;
    if (mod === 'netdev_offload_tc' || mod === 'tc' || mod === 'netdev_offload') reasons.push(`${mod}: ${msg!.trim()}`);
    else if (mod === 'dpif_netlink' && msg!.includes('failed to offload flow')) error = msg!.trim();
    else if (mod === 'dpif_netlink' && /\bput\[/.test(msg!)) {
      const ufid = /ufid:([0-9a-f-]{36})/.exec(msg!)?.[1];
      if (ufid && error) out.push({ ufid, error, reasons });
      reasons = [];
      error = '';
    }
  }
  return out;
}
