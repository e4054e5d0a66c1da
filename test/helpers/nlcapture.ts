// Captures the rtnetlink messages a real iproute2 command sends, byte for byte:
// the command runs under `strace -e write=all` inside a throwaway network
// namespace where the named devices exist (veth, with a clsact qdisc). The
// kernel's answer does not matter (this kernel has no cls_flower): iproute2
// encodes the whole request before the kernel sees it.
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Capture {
  argv: string[];
  exit: number;
  stderr: string;
  /** Every netlink message sent, split on nlmsg_len. */
  messages: Buffer[];
}

export interface CaptureBatch {
  /** Device name -> ifindex inside the capture namespace. */
  ifindex: Record<string, number>;
  captures: Capture[];
}

let seq = 0;

/** Parses strace's `-e write=all` hex dump (`| 00000  a4 00 00 00 ...  ascii |`) into the sent buffers. */
export function parseStraceDump(trace: string): Buffer[] {
  const sends: Buffer[][] = [];
  let cur: Buffer[] | undefined;
  for (const line of trace.split('\n')) {
    const m = /^\s*(?:\d+\s+)?\|\s([0-9a-f]{5})\s+((?:[0-9a-f]{2}\s+)+)/.exec(line);
    if (m) {
      if (parseInt(m[1]!, 16) === 0) {
        cur = [];
        sends.push(cur);
      }
      cur?.push(Buffer.from(m[2]!.replace(/\s+/g, ''), 'hex'));
    } else if (!line.trim().startsWith('|')) cur = undefined;
  }
  const out: Buffer[] = [];
  for (const parts of sends) {
    let buf = Buffer.concat(parts);
    // One sendmsg may carry several messages (a batch): split on nlmsg_len.
    while (buf.length >= 16) {
      const n = buf.readUInt32LE(0);
      if (n < 16 || n > buf.length) break;
      out.push(Buffer.from(buf.subarray(0, n)));
      buf = buf.subarray((n + 3) & ~3);
    }
  }
  return out;
}

export async function haveStrace(): Promise<boolean> {
  return (await execa('strace', ['-V'], { reject: false })).exitCode === 0;
}

/** Runs each argv (e.g. ['tc','filter','add','dev','vf0',...]) in one namespace holding `devs`. */
export async function captureBatch(commands: string[][], devs: string[]): Promise<CaptureBatch> {
  const ns = `vpfcap${process.pid}x${seq++}`;
  const dir = mkdtempSync(join(tmpdir(), 'vpf-nlcap-'));
  try {
    await execa('ip', ['netns', 'add', ns]);
    const script = ['set -e', 'ip link set lo up'];
    // vfN gets ifindex N+2, the guest channel's own numbering (docs/protocol.md), so captures can be
    // sent on a channel as they are; lo holds 1, so the uplink (and any other name) gets an index of its own.
    devs.forEach((d, i) => {
      const vf = /^vf(\d+)$/.exec(d);
      const index = vf ? Number(vf[1]) + 2 : 500 + i;
      script.push(`ip link add ${d} index ${index} type veth peer name nlcp${i} index ${1000 + i}`, `ip link set ${d} up`, `tc qdisc add dev ${d} clsact 2>/dev/null || true`);
    });
    script.push('set +e');
    commands.forEach((argv, i) => {
      const q = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
      script.push(`strace -f -qq -e trace=sendmsg,sendto -e write=all -o ${dir}/t${i} ${q} >/dev/null 2>${dir}/e${i}; echo $? >${dir}/x${i}`);
    });
    writeFileSync(join(dir, 'run.sh'), script.join('\n') + '\n');
    await execa('ip', ['netns', 'exec', ns, 'bash', join(dir, 'run.sh')]);
    const links = JSON.parse((await execa('ip', ['-n', ns, '-j', 'link', 'show'])).stdout) as { ifname: string; ifindex: number }[];
    const ifindex: Record<string, number> = {};
    for (const l of links) if (devs.includes(l.ifname)) ifindex[l.ifname] = l.ifindex;
    const captures = commands.map((argv, i) => ({
      argv,
      exit: Number(readFileSync(join(dir, `x${i}`), 'utf8').trim()),
      stderr: readFileSync(join(dir, `e${i}`), 'utf8').trim(),
      messages: parseStraceDump(readFileSync(join(dir, `t${i}`), 'utf8')),
    }));
    return { ifindex, captures };
  } finally {
    await execa('ip', ['netns', 'del', ns], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function captureNetlink(argv: string[], opts: { devs?: string[] } = {}): Promise<Capture & { ifindex: Record<string, number> }> {
  const b = await captureBatch([argv], opts.devs ?? []);
  return { ...b.captures[0]!, ifindex: b.ifindex };
}
