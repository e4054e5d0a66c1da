// The physical-VF backend against the real kernel: the bytes it sends are the
// ones `ip link set dev PF vf H ...` sends (captured with strace), and the
// kernel's answer (errno, extack text) comes back as `ip` would report it.
// This kernel has no SR-IOV device, so the PF is a veth: no ndo_set_vf_*.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { HostPfBackend, hostVfRequest, type KernelAnswer } from '../../agent/physvf.js';
import { IFLA, IFLA_VF, IFLA_VF_INFO, IFLA_VF_VLAN_INFO } from '../../rules/netlink/link.js';
import { parseAttrs, parseMessages, Rtm } from '../../rules/netlink/nlmsg.js';
import { VLAN_PROTO_8021AD, VLAN_PROTO_8021Q, type VfRequest } from '../../rules/vf.js';
import { captureBatch } from '../helpers/nlcapture.js';

const GUEST_VF = 0;
const HOST_VF = 3;

// --- attribute trees: compare two messages attribute by attribute ---

type Level = 'link' | 'vfinfo_list' | 'vf_info' | 'vlan_list';
interface AttrNode {
  type: number;
  value?: string;
  children?: AttrNode[];
}

const NESTS: Record<Level, Partial<Record<number, Level>>> = {
  link: { [IFLA.VFINFO_LIST]: 'vfinfo_list' },
  vfinfo_list: { [IFLA_VF_INFO]: 'vf_info' },
  vf_info: { [IFLA_VF.VLAN_LIST]: 'vlan_list' },
  vlan_list: {},
};

function tree(buf: Buffer, level: Level): AttrNode[] {
  return parseAttrs(buf, level).map((a) => {
    const inner = NESTS[level][a.type];
    if (inner) return { type: a.type, children: tree(a.value, inner) };
    const value = Buffer.from(a.value);
    // struct ifla_vf_vlan_info is a stack variable in iproute2: its 2 pad bytes are garbage.
    if (level === 'vlan_list' && a.type === IFLA_VF_VLAN_INFO && value.length >= 16) value.fill(0, 14, 16);
    return { type: a.type, value: value.toString('hex') };
  });
}

/** Everything but nlmsg_seq and nlmsg_pid. */
function describeRequest(buf: Buffer) {
  const msgs = parseMessages(buf);
  expect(msgs).toHaveLength(1);
  const m = msgs[0]!;
  return { length: buf.readUInt32LE(0), type: m.type, flags: m.flags, ifinfomsg: m.payload.subarray(0, 16).toString('hex'), attrs: tree(m.payload.subarray(16), 'link') };
}

// --- what `ip` reports, as a KernelAnswer ---

/** strerror(3) texts iproute2 prints after "RTNETLINK answers: ". */
const STRERROR: Record<string, number> = { 'Operation not supported': 95, 'Invalid argument': 22, 'No such device': 19 };

async function ipAnswer(args: string[]): Promise<KernelAnswer> {
  const r = await execa('ip', args, { reject: false });
  if (r.exitCode === 0) return { errno: 0 };
  // lib/libnetlink.c: an extack is printed as "Error: MSG." instead of the errno text.
  const ext = /^Error: (.*?)\.?$/m.exec(r.stderr);
  if (ext) return { errno: -1, message: ext[1]! };
  const m = /RTNETLINK answers: (.+)$/m.exec(r.stderr);
  const errno = m ? STRERROR[m[1]!.trim()] : undefined;
  if (errno === undefined) throw new Error(`unexpected ip output: ${r.stderr}`);
  return { errno };
}

// --- 1. the bytes ---

const CASES: { args: string[]; req: VfRequest }[] = [
  { args: ['mac', '02:11:22:33:44:55'], req: { vf: GUEST_VF, mac: '02:11:22:33:44:55' } },
  { args: ['vlan', '100', 'qos', '3'], req: { vf: GUEST_VF, vlan: { vlan: 100, qos: 3, proto: VLAN_PROTO_8021Q } } },
  { args: ['vlan', '100', 'proto', '802.1ad'], req: { vf: GUEST_VF, vlan: { vlan: 100, qos: 0, proto: VLAN_PROTO_8021AD } } },
  { args: ['spoofchk', 'on'], req: { vf: GUEST_VF, spoofchk: true } },
  { args: ['trust', 'on'], req: { vf: GUEST_VF, trust: true } },
  { args: ['state', 'disable'], req: { vf: GUEST_VF, linkState: 2 } },
  { args: ['query_rss', 'on'], req: { vf: GUEST_VF, rssQuery: true } },
  { args: ['rate', '50'], req: { vf: GUEST_VF, txRate: 50 } },
  // Both rates: with only one, iproute2 dumps the link for the other and fails on a veth before sending.
  { args: ['max_tx_rate', '100', 'min_tx_rate', '10'], req: { vf: GUEST_VF, rate: { min: 10, max: 100 } } },
  {
    args: ['mac', '02:00:00:00:00:01', 'vlan', '100', 'qos', '3', 'proto', '802.1ad', 'spoofchk', 'off', 'trust', 'on', 'state', 'enable', 'min_tx_rate', '10', 'max_tx_rate', '100'],
    req: { vf: GUEST_VF, mac: '02:00:00:00:00:01', vlan: { vlan: 100, qos: 3, proto: VLAN_PROTO_8021AD }, spoofchk: false, trust: true, linkState: 1, rate: { min: 10, max: 100 } },
  },
];

describe('hostVfRequest', () => {
  test('sends what `ip link set dev PF vf H ...` sends, with the guest VF mapped to the host VF', async () => {
    const pf = 'hostpf';
    const batch = await captureBatch(
      CASES.map((c) => ['ip', 'link', 'set', 'dev', pf, 'vf', String(HOST_VF), ...c.args]),
      [pf],
    );
    const ifindex = batch.ifindex[pf]!;
    expect(ifindex).toBeGreaterThan(0);
    CASES.forEach((c, i) => {
      const cap = batch.captures[i]!;
      // iproute2 first probes with an empty RTM_NEWLINK for ifindex 0 (iplink_have_newlink); the set names the PF.
      const sets = cap.messages.filter((m) => m.readUInt16LE(4) === Rtm.NEWLINK && m.readInt32LE(16 + 4) === ifindex);
      expect(sets, `${cap.argv.join(' ')}: ${cap.stderr}`).toHaveLength(1);
      const ours = hostVfRequest(ifindex, c.req, HOST_VF, 1);
      expect(describeRequest(ours), cap.argv.join(' ')).toEqual(describeRequest(sets[0]!));
    });
  });
});

// --- 2. the kernel's answers ---

describe('HostPfBackend on a veth (no SR-IOV)', () => {
  const pf = `pvf${process.pid}a`;
  const peer = `pvf${process.pid}b`;
  const missing = `pvf${process.pid}x`;
  const INT_MAX = 0x7fffffff;
  const backends: HostPfBackend[] = [];
  const backend = (name: string, hostVf: (g: number) => number = (g) => (g === GUEST_VF ? HOST_VF : g)) => {
    const b = new HostPfBackend({ pf: name, hostVf });
    backends.push(b);
    return b;
  };

  beforeAll(async () => {
    await execa('ip', ['link', 'del', pf], { reject: false });
    await execa('ip', ['link', 'add', pf, 'type', 'veth', 'peer', 'name', peer]);
  });
  afterAll(async () => {
    for (const b of backends) b.close();
    await execa('ip', ['link', 'del', pf], { reject: false });
  });

  test('a MAC request returns the errno `ip` reports for the same request (EOPNOTSUPP), without extack', async () => {
    const answer = await backend(pf).apply({ vf: GUEST_VF, mac: '02:00:00:00:00:01' });
    const ip = await ipAnswer(['link', 'set', 'dev', pf, 'vf', String(HOST_VF), 'mac', '02:00:00:00:00:01']);
    expect(ip).toEqual({ errno: 95 });
    expect(answer).toEqual(ip);
  });

  test('every setting kind reaches the kernel and comes back as `ip` reports it', async () => {
    const b = backend(pf);
    for (const c of CASES) {
      const answer = await b.apply(c.req);
      const ip = await ipAnswer(['link', 'set', 'dev', pf, 'vf', String(HOST_VF), ...c.args]);
      expect(answer, c.args.join(' ')).toEqual(ip);
    }
  });

  test('concurrent requests are answered each with its own kernel errno (host VF INT_MAX is EINVAL in do_setvfinfo)', async () => {
    const b = backend(pf, (g) => (g === 1 ? INT_MAX : g));
    const guestVfs = [0, 1, 0, 1, 1, 0];
    const answers = await Promise.all(guestVfs.map((vf) => b.apply({ vf, mac: '02:00:00:00:00:01' })));
    const ok = await ipAnswer(['link', 'set', 'dev', pf, 'vf', '0', 'mac', '02:00:00:00:00:01']);
    const big = await ipAnswer(['link', 'set', 'dev', pf, 'vf', String(INT_MAX), 'mac', '02:00:00:00:00:01']);
    expect(big).toEqual({ errno: 22 });
    expect(answers).toEqual(guestVfs.map((vf) => (vf === 1 ? big : ok)));
  });

  test('a PF name that does not exist is ENODEV, from the kernel\'s name lookup', async () => {
    const b = backend(missing);
    expect(await b.apply({ vf: GUEST_VF, spoofchk: true })).toEqual({ errno: 19 });
    expect(await b.read()).toEqual({ ok: false, answer: { errno: 19 } });
  });

  test('read() reports the kernel\'s view: a veth has no parent device, so no IFLA_NUM_VF and no VFs', async () => {
    expect(await backend(pf).read()).toEqual({ ok: true, vfs: [] });
    const shown = JSON.parse((await execa('ip', ['-d', '-j', 'link', 'show', 'dev', pf])).stdout) as Record<string, unknown>[];
    expect(shown[0]).not.toHaveProperty('vfinfo_list');
    expect(shown[0]).not.toHaveProperty('num_vf');
  });

  test('a guest VF without a host VF is refused before anything is sent; a closed backend answers EBADF', async () => {
    const b = backend(pf, (g) => {
      if (g !== GUEST_VF) throw new Error(`no host VF for guest vf ${g}`);
      return -1;
    });
    const unmapped = await b.apply({ vf: 5, mac: '02:00:00:00:00:01' });
    expect(unmapped.errno).toBe(22);
    expect(unmapped.message).toMatch(/guest vf 5/);
    expect((await b.apply({ vf: GUEST_VF, mac: '02:00:00:00:00:01' })).errno).toBe(22);
    b.close();
    expect((await b.apply({ vf: 1, trust: true })).errno).toBe(9);
  });
});
