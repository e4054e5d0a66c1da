// nlshim is faithful: with this host's kernel behind a guest channel
// (nlrelay.py forwards the unix stream to a real AF_NETLINK socket, and sets
// each reply's nlmsg_pid to the requester's as the channel contract says),
// real ip, tc, genl and devlink print exactly what they print talking to the
// kernel directly, and so does a client that reads without waiting as OVS does
// (nowait.py). The shimmed client runs in a network namespace of its own,
// so anything it learnt outside netlink (ioctls, /sys) would show as a diff.
// This host's kernel has veth, genl ctrl, clsact and matchall, but no dummy,
// devlink or cls_flower: their refusals are compared too.
import { execa } from 'execa';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shimPath } from '../../agent/ctl/guest.js';

// Namespace names are host-wide: this run's carry its pid.
const NS = { relay: `vpft${process.pid}-k`, client: `vpft${process.pid}-c`, direct: `vpft${process.pid}-d` };
let dir: string;
let relay: ReturnType<typeof execa>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vpf-shim-'));
  for (const ns of Object.values(NS)) {
    await execa('ip', ['netns', 'del', ns], { reject: false });
    await execa('ip', ['netns', 'add', ns]);
    // No IPv6 autoconf/DAD/MLD frames: counters move only with what the script does.
    await execa('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  }
  relay = execa('ip', ['netns', 'exec', NS.relay, 'python3', join(import.meta.dirname, 'nlrelay.py'), join(dir, 'route.sock'), join(dir, 'genl.sock')], { reject: false });
  for (let i = 0; i < 200 && !(existsSync(join(dir, 'route.sock')) && existsSync(join(dir, 'genl.sock'))); i++) await new Promise((r) => setTimeout(r, 25));
});

afterAll(async () => {
  relay?.kill();
  await relay?.catch(() => undefined);
  for (const ns of Object.values(NS)) await execa('ip', ['netns', 'del', ns], { reject: false });
  rmSync(dir, { recursive: true, force: true });
});

const transcript = (r: { exitCode?: number; stdout: unknown; stderr: unknown }) => `${String(r.stdout)}\n--stderr--\n${String(r.stderr)}\n--exit ${r.exitCode}`;

/** The command in the client namespace through the shim (kernel in the relay's namespace), and directly in a twin namespace. */
async function both(cmd: string): Promise<{ shim: string; direct: string }> {
  const argv = cmd.split(' ');
  const env = { LD_PRELOAD: shimPath(), VPF_NL_ROUTE: join(dir, 'route.sock'), VPF_NL_GENL: join(dir, 'genl.sock') };
  const [s, d] = await Promise.all([
    execa('ip', ['netns', 'exec', NS.client, ...argv], { env, reject: false, timeout: 10_000 }),
    execa('ip', ['netns', 'exec', NS.direct, ...argv], { reject: false, timeout: 10_000 }),
  ]);
  return { shim: transcript(s), direct: transcript(d) };
}

// In order: each namespace gets the same changes, so later listings compare state too.
const SCRIPT = [
  'ip link add v0 address 02:00:00:00:00:01 type veth peer name v1 address 02:00:00:00:00:02',
  'ip link set v0 up',
  'ip link set v1 up mtu 1400',
  'ip link show',
  'ip -d link show',
  'ip -s -s link show v0',
  'ip -j -d -s link show v1',
  'ip -d -s -j link show lo',
  'ip link set v9 up',
  'ip link add v0 type veth',
  'ip link set v0 mtu 70000',
  'ip link set dev v1 address 02:00:00:00:00:09',
  'ip link show v1',
  'ip link del v1',
  'ip link show',
  'tc qdisc add dev lo clsact',
  'tc qdisc add dev lo clsact',
  'tc qdisc show dev lo',
  'tc filter add dev lo ingress prio 1 protocol ip matchall action drop',
  'tc filter add dev lo ingress prio 2 protocol all matchall action pass',
  'tc -s filter show dev lo ingress',
  'tc -j -s filter show dev lo ingress',
  'tc filter add dev lo ingress prio 3 protocol ip flower action drop',
  'tc chain add dev lo ingress chain 3',
  'tc chain add dev lo ingress chain 3',
  'tc chain show dev lo ingress',
  'tc chain del dev lo ingress chain 7',
  'tc filter del dev lo ingress prio 1',
  'tc filter show dev lo ingress',
  'genl ctrl list',
  'genl ctrl get name nlctrl',
  'devlink dev show',
  'devlink dev eswitch show pci/0000:00:00.0',
];

describe('nlshim with a real kernel behind the channel', () => {
  it('the shim was built (scripts/deps.sh)', () => expect(existsSync(shimPath())).toBe(true));
  it('the relay is up', () => expect(existsSync(join(dir, 'route.sock'))).toBe(true));
  for (const cmd of SCRIPT) {
    it(cmd, async () => {
      const r = await both(cmd);
      expect(r.shim).toBe(r.direct);
    });
  }
});

// OVS connects to the kernel before getsockname and reads each answer with
// MSG_DONTWAIT right after send (lib/netlink-socket.c): the kernel answered
// inside sendmsg (C3, docs/protocol.md), so the shim must have too.
describe('nlshim for a client that reads without waiting', () => {
  it('connect to pid 0 succeeds, and every answer is there when send returns', async () => {
    const r = await both(`python3 ${join(import.meta.dirname, 'nowait.py')}`);
    expect(r.shim).toBe(r.direct);
    expect(r.shim).toContain('connect to the kernel: ok');
    expect(r.shim).toContain('get lo: sent 32, seq 1 link 1, EAGAIN');
  });
});

// A virtual PF takes the representors' tc only; the guest's own devices stay
// its kernel's (a guest OVS probes flower on its ovs-system). Given the
// representors' ifindexes (VPF_NL_REPS), the shim sends tc requests naming
// another device to the client's own kernel.
describe('nlshim with VPF_NL_REPS: tc on the guest\'s own devices goes to its own kernel', () => {
  const ip = (ns: string, ...a: string[]) => execa('ip', ['netns', 'exec', ns, ...a], { reject: false });
  const index = async (ns: string, dev: string) => (JSON.parse((await ip(ns, 'ip', '-j', 'link', 'show', dev)).stdout) as { ifindex: number }[])[0]!.ifindex;
  const qdiscs = async (ns: string, dev: string) => (await ip(ns, 'tc', 'qdisc', 'show', 'dev', dev)).stdout;

  it('a qdisc on a representor reaches the channel, one on another device the client\'s kernel', async () => {
    // The channel (relay) side: a representor r0 and another device r1; the client's own kernel has g0 at r1's ifindex.
    await ip(NS.relay, 'ip', 'link', 'add', 'r0', 'type', 'veth', 'peer', 'name', 'r1');
    const rep = await index(NS.relay, 'r0'), other = await index(NS.relay, 'r1');
    await ip(NS.client, 'ip', 'link', 'add', 'g0', 'index', String(other), 'type', 'veth', 'peer', 'name', 'g0p');
    expect(await index(NS.client, 'g0')).toBe(other);
    const env = { LD_PRELOAD: shimPath(), VPF_NL_ROUTE: join(dir, 'route.sock'), VPF_NL_GENL: join(dir, 'genl.sock'), VPF_NL_REPS: `${rep},${rep + 100}` };
    const shimmed = (...a: string[]) => execa('ip', ['netns', 'exec', NS.client, 'tc', ...a], { env, reject: false });
    expect((await shimmed('qdisc', 'add', 'dev', 'r0', 'clsact')).exitCode).toBe(0);
    expect((await shimmed('qdisc', 'add', 'dev', 'r1', 'clsact')).exitCode).toBe(0);
    expect(await qdiscs(NS.relay, 'r0')).toContain('qdisc clsact');
    expect(await qdiscs(NS.relay, 'r1')).not.toContain('qdisc clsact');
    expect(await qdiscs(NS.client, 'g0')).toContain('qdisc clsact');
    // The client's kernel answers for its own device, errors included (a second clsact: EEXIST there).
    expect((await shimmed('qdisc', 'add', 'dev', 'r1', 'clsact')).stderr).toContain('File exists');
  });

  it('with VPF_NL_SWCOPY, what the client sets on a representor is set in its own kernel too, and taken away there', async () => {
    // The client's kernel has its own device at the representor's ifindex (as a guest has its representor).
    await ip(NS.relay, 'ip', 'link', 'add', 's0', 'type', 'veth', 'peer', 'name', 's1');
    const rep = await index(NS.relay, 's0');
    await ip(NS.client, 'ip', 'link', 'add', 'gs0', 'index', String(rep), 'type', 'veth', 'peer', 'name', 'gs0p');
    const env = { LD_PRELOAD: shimPath(), VPF_NL_ROUTE: join(dir, 'route.sock'), VPF_NL_GENL: join(dir, 'genl.sock'), VPF_NL_REPS: String(rep), VPF_NL_SWCOPY: '1' };
    const shimmed = (...a: string[]) => execa('ip', ['netns', 'exec', NS.client, 'tc', ...a], { env, reject: false });
    expect((await shimmed('qdisc', 'add', 'dev', 's0', 'ingress')).exitCode).toBe(0);
    expect(await qdiscs(NS.relay, 's0')).toContain('qdisc ingress');
    expect(await qdiscs(NS.client, 'gs0')).toContain('qdisc ingress');
    expect((await shimmed('qdisc', 'del', 'dev', 's0', 'ingress')).exitCode).toBe(0);
    expect(await qdiscs(NS.relay, 's0')).not.toContain('qdisc ingress');
    expect(await qdiscs(NS.client, 'gs0')).not.toContain('qdisc ingress');
  });
});
