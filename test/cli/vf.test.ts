// vpfctl vf / vpfctl eswitch against a fake channel: a unix socket server in
// the test that records what the CLI sends and answers as the guest kernel (or
// vpfd) would. The CLI's bytes are compared with what the real iproute2 sent for
// the same command (test/corpus/links.json, captured with strace).
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as eswitchCli from '../../agent/ctl/eswitch.js';
import * as vfCli from '../../agent/ctl/vf.js';
import { decodeDevlinkRequest, encodeEswitchReply, encodeFamilyReply, type EswitchAttrs } from '../../rules/netlink/devlink.js';
import { decodeLinkRequest, encodeLinkReply, RTEXT_FILTER, type LinkRequest } from '../../rules/netlink/link.js';
import { buildError, parseMessages, Rtm, type NlMessage } from '../../rules/netlink/nlmsg.js';
import { Errno } from '../../rules/errors.js';
import { defaultVfSettings, VLAN_PROTO_8021AD, type VfSettings, type VfStats } from '../../rules/vf.js';
import { loadLinks } from '../corpus/captureLinks.js';

let dir: string;
let servers: Server[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vpf-vfcli-'));
  mkdirSync(join(dir, 'vms'));
});

afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  servers = [];
  rmSync(dir, { recursive: true, force: true });
});

/** A channel socket that records every message and answers each with `answer(msg)`. */
async function fakeChannel(path: string, answer: (m: NlMessage) => Buffer[]): Promise<NlMessage[]> {
  const received: NlMessage[] = [];
  const server = createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('error', () => {});
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 16 && buf.readUInt32LE(0) <= buf.length) {
        const len = buf.readUInt32LE(0);
        const m = parseMessages(Buffer.from(buf.subarray(0, len)))[0]!;
        buf = buf.subarray((len + 3) & ~3);
        received.push(m);
        for (const r of answer(m)) if (!sock.destroyed) sock.write(r);
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(path, r));
  return received;
}

const rtnlPath = (vm = 'vm1') => join(dir, 'vms', `${vm}.sock`);
const genlPath = (vm = 'vm1') => join(dir, 'vms', `${vm}.genl.sock`);

/** Runs a vpfctl command in-process, capturing what it prints. */
async function vpfctl(cmd: 'vf' | 'eswitch', ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((stdout += String(c)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((stderr += String(c)), true));
  try {
    const code = await (cmd === 'vf' ? vfCli.run : eswitchCli.run)([...args, '--state-dir', dir]);
    return { code, stdout, stderr };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const decode = (m: NlMessage): LinkRequest => {
  const r = decodeLinkRequest(m);
  if (!r.ok) throw r.error;
  return r.value;
};

const ack = (m: NlMessage) => buildError(m, 0);

/** A guest kernel's PF with these VFs: GETLINK gets the one RTM_NEWLINK (no ACK, no DONE), NEWLINK an ACK. */
function pfAnswering(vfs: VfSettings[], stats?: VfStats[], onSet: (m: NlMessage) => Buffer[] = (m) => [ack(m)]) {
  return (m: NlMessage): Buffer[] => {
    if (m.type !== Rtm.GETLINK) return onSet(m);
    const req = decode(m);
    const extMask = req.op === 'get' ? req.extMask : 0;
    return [encodeLinkReply({ seq: m.seq, pid: m.pid }, { ifindex: 1, name: 'pf', mac: '02:00:00:00:00:fe', mtu: 1500, up: true }, { extMask, vfs, stats })];
  };
}

const vf = (over: Partial<VfSettings>): VfSettings => ({ ...defaultVfSettings(), ...over });

describe('vpfctl vf N ... sends what `ip link set PF vf N ...` sends', () => {
  const links = loadLinks();
  // Single-clause commands only: vpfctl vf takes one VF per command.
  const cases = links.entries.filter((e) => e.kind === 'setvf' && e.argv.filter((w) => w === 'vf').length === 1);

  it('has real captures to compare with', () => {
    expect(cases.length).toBeGreaterThanOrEqual(8);
  });

  for (const c of cases) {
    const words = c.argv.slice(c.argv.indexOf('vf') + 1);
    it(`vf ${words.join(' ')}`, async () => {
      const received = await fakeChannel(rtnlPath(), (m) => [ack(m)]);
      const r = await vpfctl('vf', 'vm1', ...words);
      expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
      // Both rates are given in every captured command, so no GETLINK comes first.
      expect(received).toHaveLength(1);
      const ours = Buffer.from(buildFrame(received[0]!));
      const theirs = Buffer.from(c.message, 'hex');
      // Normalise what differs by construction: nlmsg_seq, the PF's ifindex (500 in the capture
      // namespace, 1 on the channel) and ifla_vf_vlan_info's 2 pad bytes, which iproute2 leaves uninitialised.
      theirs.writeUInt32LE(ours.readUInt32LE(8), 8);
      expect(theirs.readInt32LE(20)).toBe(links.ifindex.uplink);
      theirs.writeInt32LE(1, 20);
      for (const b of [ours, theirs]) {
        const tpid = b.indexOf(Buffer.from([0x88, 0xa8]));
        if (tpid >= 0) b.fill(0, tpid + 2, tpid + 4);
      }
      expect(ours.toString('hex')).toBe(theirs.toString('hex'));
    });
  }
});

/** The bytes of a received message, header included. */
function buildFrame(m: NlMessage): Buffer {
  const b = Buffer.alloc(16 + m.payload.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(m.type, 4);
  b.writeUInt16LE(m.flags, 6);
  b.writeUInt32LE(m.seq, 8);
  b.writeUInt32LE(m.pid, 12);
  m.payload.copy(b, 16);
  return b;
}

describe('vpfctl vf errors read like ip', () => {
  it('an error with extack prints "Error: <msg>." only, and exits 2', async () => {
    await fakeChannel(rtnlPath(), (m) => [buildError(m, Errno.EINVAL, 'VF 7 is out of range: the VM has 2 VFs')]);
    const r = await vpfctl('vf', 'vm1', '7', 'mac', '02:00:00:00:00:07');
    expect(r).toEqual({ code: 2, stdout: '', stderr: 'Error: VF 7 is out of range: the VM has 2 VFs.\n' });
  });

  it('an extack that ends with a dot gets no second one', async () => {
    await fakeChannel(rtnlPath(), (m) => [buildError(m, Errno.EPROTONOSUPPORT, '802.1ad is not supported.')]);
    const r = await vpfctl('vf', 'vm1', '0', 'vlan', '5', 'proto', '802.1ad');
    expect(r.stderr).toBe('Error: 802.1ad is not supported.\n');
    expect(r.code).toBe(2);
  });

  it('a bare errno prints "RTNETLINK answers: <strerror>", and exits 2', async () => {
    await fakeChannel(rtnlPath(), (m) => [buildError(m, Errno.EOPNOTSUPP)]);
    const r = await vpfctl('vf', 'vm1', '0', 'state', 'disable');
    expect(r).toEqual({ code: 2, stdout: '', stderr: 'RTNETLINK answers: Operation not supported\n' });
  });

  it('an ACK that carries a message is a warning: printed, exit 0', async () => {
    await fakeChannel(rtnlPath(), (m) => [buildError(m, 0, 'spoofchk with a zero MAC drops everything the VF sends')]);
    const r = await vpfctl('vf', 'vm1', '0', 'spoofchk', 'on');
    expect(r).toEqual({ code: 0, stdout: '', stderr: 'Warning: spoofchk with a zero MAC drops everything the VF sends.\n' });
  });

  it('a syntax error is reported before anything is sent', async () => {
    const received = await fakeChannel(rtnlPath(), (m) => [ack(m)]);
    const r = await vpfctl('vf', 'vm1', '0', 'vlan', '5000');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('Error: argument "5000" is wrong: Invalid "vlan" value\n');
    expect(received).toHaveLength(0);
  });

  it('a VM without a channel is named as such', async () => {
    const r = await vpfctl('vf', 'nosuchvm', '0', 'trust', 'on');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no channel for that VM .*nosuchvm\.sock/);
  });
});

describe('vpfctl vf show', () => {
  const vfs = [
    vf({ mac: '02:00:00:00:00:01', vlan: 100, qos: 3, spoofchk: true, maxTxRate: 100 }),
    vf({ vlan: 7, vlanProto: VLAN_PROTO_8021AD, minTxRate: 5, linkState: 'disable', trust: true }),
  ];
  const stats: VfStats[] = [
    { rxPackets: 10n, txPackets: 20n, rxBytes: 123456n, txBytes: 654321n, broadcast: 3n, multicast: 4n, rxDropped: 5n, txDropped: 6n },
    { rxPackets: 0n, txPackets: 0n, rxBytes: 0n, txBytes: 0n, broadcast: 0n, multicast: 0n, rxDropped: 0n, txDropped: 0n },
  ];

  it('prints one `ip link show` VF line per VF, from a GETLINK on the PF', async () => {
    const received = await fakeChannel(rtnlPath(), pfAnswering(vfs, stats));
    const r = await vpfctl('vf', 'vm1', 'show');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      [
        '    vf 0     link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff, vlan 100, qos 3, tx rate 100 (Mbps), max_tx_rate 100Mbps, spoof checking on, link-state auto, trust off, query_rss off',
        '    vf 1     link/ether 00:00:00:00:00:00 brd ff:ff:ff:ff:ff:ff, vlan 7, vlan protocol 802.1ad, min_tx_rate 5Mbps, spoof checking off, link-state disable, trust on, query_rss off',
        '',
      ].join('\n'),
    );
    expect(received).toHaveLength(1);
    expect(decode(received[0]!)).toMatchObject({ op: 'get', dump: false, ifindex: 1, extMask: RTEXT_FILTER.VF | RTEXT_FILTER.SKIP_STATS });
  });

  it('-s asks for stats (no SKIP_STATS) and prints each VF\'s counters', async () => {
    const received = await fakeChannel(rtnlPath(), pfAnswering(vfs, stats));
    const r = await vpfctl('vf', 'vm1', '-s', 'show');
    expect(r.code).toBe(0);
    expect(decode(received[0]!)).toMatchObject({ op: 'get', ifindex: 1, extMask: RTEXT_FILTER.VF });
    const lines = r.stdout.split('\n');
    const rx = lines.findIndex((l) => l.includes('RX: bytes'));
    expect(lines[rx + 1]!.trim().split(/\s+/)).toEqual(['123456', '10', '4', '3', '5']);
    const tx = lines.findIndex((l) => l.includes('TX: bytes'));
    expect(lines[tx + 1]!.trim().split(/\s+/)).toEqual(['654321', '20', '6']);
    expect(lines.filter((l) => l.includes('RX: bytes'))).toHaveLength(2);
  });

  it('without -s no counters are printed', async () => {
    await fakeChannel(rtnlPath(), pfAnswering(vfs, stats));
    const r = await vpfctl('vf', 'vm1', 'show');
    expect(r.stdout).not.toContain('RX:');
  });

  it('says so when fewer VFs came back than IFLA_NUM_VF announces', async () => {
    await fakeChannel(rtnlPath(), (m) => {
      const full = pfAnswering(vfs)(m)[0]!;
      // Rewrite IFLA_NUM_VF (u32 after its 4-byte header) to claim 3 VFs.
      const at = full.indexOf(Buffer.from([0x08, 0x00, 0x15, 0x00]));
      full.writeUInt32LE(3, at + 4);
      return [full];
    });
    const r = await vpfctl('vf', 'vm1', 'show');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('    vf '))).toHaveLength(2);
    expect(r.stderr).toBe('Truncated VF list: pf\n');
  });
});

describe('vpfctl vf min_tx_rate / max_tx_rate alone read the current rate first (ipaddr_get_vf_rate)', () => {
  const vfs = [vf({ minTxRate: 10, maxTxRate: 50 }), vf({})];

  it('max_tx_rate alone keeps the current min_tx_rate', async () => {
    const received = await fakeChannel(rtnlPath(), pfAnswering(vfs));
    const r = await vpfctl('vf', 'vm1', '0', 'max_tx_rate', '100');
    expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(received.map((m) => m.type)).toEqual([Rtm.GETLINK, Rtm.NEWLINK]);
    const get = decode(received[0]!);
    expect(get).toMatchObject({ op: 'get', dump: false, ifindex: 1 });
    expect(get.op === 'get' && get.extMask & RTEXT_FILTER.VF).toBe(RTEXT_FILTER.VF);
    expect(decode(received[1]!)).toMatchObject({ op: 'setvf', requests: [{ vf: 0, rate: { min: 10, max: 100 } }] });
    // Two requests on one conversation: distinct sequence numbers.
    expect(received[1]!.seq).not.toBe(received[0]!.seq);
  });

  it('min_tx_rate alone keeps the current max_tx_rate', async () => {
    const received = await fakeChannel(rtnlPath(), pfAnswering(vfs));
    const r = await vpfctl('vf', 'vm1', '0', 'min_tx_rate', '20');
    expect(r.code).toBe(0);
    expect(decode(received[1]!)).toMatchObject({ op: 'setvf', requests: [{ vf: 0, rate: { min: 20, max: 50 } }] });
  });

  it('a min_tx_rate above the current max is refused before the set is sent', async () => {
    const received = await fakeChannel(rtnlPath(), pfAnswering(vfs));
    const r = await vpfctl('vf', 'vm1', '0', 'min_tx_rate', '60');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('Error: Invalid min_tx_rate 60 - must be <= max_tx_rate 50\n');
    expect(received.map((m) => m.type)).toEqual([Rtm.GETLINK]);
  });

  it('a VF the PF does not report is "Cannot find VF N"', async () => {
    const received = await fakeChannel(rtnlPath(), pfAnswering(vfs));
    const r = await vpfctl('vf', 'vm1', '5', 'max_tx_rate', '10');
    expect(r).toEqual({ code: 1, stdout: '', stderr: 'Cannot find VF 5\n' });
    expect(received.map((m) => m.type)).toEqual([Rtm.GETLINK]);
  });
});

describe('vpfctl eswitch', () => {
  /** A devlink behind the nlctrl lookup, under a family id of its own choosing; kernel-style ACKs after answers. */
  async function fakeDevlink(familyId: number, refuseSet?: { errno: number; msg?: string }) {
    let state: EswitchAttrs = { mode: 'legacy', inlineMode: 'none', encapMode: 'basic' };
    const seen: string[] = [];
    await fakeChannel(genlPath(), (m) => {
      const d = decodeDevlinkRequest(m, familyId);
      if (!d.ok) return [buildError(m, d.error.errno, d.error.message)];
      const req = d.value;
      seen.push(req.cmd);
      if (req.cmd === 'getfamily') return [encodeFamilyReply({ seq: m.seq }, familyId), ack(m)];
      if (req.cmd === 'eswitch-set') {
        if (refuseSet) return [buildError(m, refuseSet.errno, refuseSet.msg)];
        state = { ...state, ...(req.mode ? { mode: req.mode } : {}) };
        return [ack(m)];
      }
      if (req.cmd === 'eswitch-get') return [encodeEswitchReply({ seq: m.seq }, req, state, familyId), ack(m)];
      return [buildError(m, Errno.EOPNOTSUPP)];
    });
    return seen;
  }

  it('mode switchdev looks devlink up, sets the mode, and show prints it as devlink does', async () => {
    const seen = await fakeDevlink(0x123);
    const set = await vpfctl('eswitch', 'vm1', 'mode', 'switchdev');
    expect(set).toEqual({ code: 0, stdout: '', stderr: '' });
    const show = await vpfctl('eswitch', 'vm1', 'show');
    expect(show).toEqual({ code: 0, stdout: 'pci/0000:00:00.0: mode switchdev inline-mode none encap-mode basic\n', stderr: '' });
    // Messages to any id but the one the lookup returned would have been refused by the fake.
    expect(seen).toEqual(['getfamily', 'eswitch-set', 'getfamily', 'eswitch-get']);
  });

  it('a refused mode change prints the extack and "devlink answers", and exits 1', async () => {
    await fakeDevlink(0x100, { errno: Errno.EBUSY, msg: "Can't change mode, E-Switch is busy" });
    const r = await vpfctl('eswitch', 'vm1', 'mode', 'legacy');
    expect(r).toEqual({ code: 1, stdout: '', stderr: "Error: Can't change mode, E-Switch is busy.\ndevlink answers: Device or resource busy\n" });
  });

  it('a bare errno prints only "devlink answers"', async () => {
    await fakeDevlink(0x100, { errno: Errno.EOPNOTSUPP });
    const r = await vpfctl('eswitch', 'vm1', 'mode', 'switchdev');
    expect(r).toEqual({ code: 1, stdout: '', stderr: 'devlink answers: Operation not supported\n' });
  });

  it('no devlink family on the channel: "Failed to connect to devlink Netlink"', async () => {
    await fakeChannel(genlPath(), (m) => [buildError(m, Errno.ENOENT)]);
    const r = await vpfctl('eswitch', 'vm1', 'show');
    expect(r).toEqual({ code: 1, stdout: '', stderr: 'Failed to connect to devlink Netlink\n' });
  });

  it('an unknown mode is a usage error and nothing is sent', async () => {
    const seen = await fakeDevlink(0x100);
    const r = await vpfctl('eswitch', 'vm1', 'mode', 'offload');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Unknown eswitch mode "offload"');
    expect(seen).toEqual([]);
  });
});
