// The real-client tier, ip and devlink: the host's real `ip` and `devlink`
// (iproute2 6.1) against vpfd's channels through nlshim. This host's kernel has
// no SR-IOV device and no devlink, and the kernel-vm oracle ships neither
// devlink nor a VF-capable netdev, so the expected text is derived from the
// sources (docs/testing.md): ip/ipaddress.c print_linkinfo/print_vfinfo and
// print_link_stats, net/core/rtnetlink.c rtnl_fill_ifinfo/do_setvfinfo,
// devlink/devlink.c cmd_dev_show/cmd_dev_eswitch_show, and an mlx5 PF's
// answers (mlx5_eswitch_set_vport_* refusals).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGuestVm, type GuestVm } from './guest.js';

let g: GuestVm;
beforeAll(async () => {
  g = await startGuestVm('rl', 2);
}, 120_000);
afterAll(async () => g?.stop());

const PF = 'pci/0000:00:00.0';
const ok = async (tool: string, args: string) => {
  const r = await g.run(tool, args.split(' '));
  expect({ cmd: `${tool} ${args}`, rc: r.rc, stderr: r.stderr }).toEqual({ cmd: `${tool} ${args}`, rc: 0, stderr: '' });
  return r.stdout;
};

describe('devlink against vpfd (never hangs: every ACKed request gets its ACK)', () => {
  it('devlink dev show lists the virtual PF (cmd_dev_show: the handle alone)', async () => {
    expect(await ok('devlink', 'dev show')).toBe(`${PF}\n`);
  });
  it('devlink -j dev show', async () => {
    expect(JSON.parse(await ok('devlink', '-j dev show'))).toEqual({ dev: { [PF]: {} } });
  });
  it('devlink dev eswitch set mode legacy, then show (pr_out_eswitch: mode, inline-mode, encap-mode)', async () => {
    expect(await ok('devlink', `dev eswitch set ${PF} mode legacy`)).toBe('');
    expect(await ok('devlink', `dev eswitch show ${PF}`)).toBe(`${PF}: mode legacy inline-mode none encap-mode basic\n`);
  });
  it('devlink -j dev eswitch show', async () => {
    expect(JSON.parse(await ok('devlink', `-j dev eswitch show ${PF}`))).toEqual({ dev: { [PF]: { mode: 'legacy', 'inline-mode': 'none', 'encap-mode': 'basic' } } });
  });
  it('switchdev and back', async () => {
    expect(await ok('devlink', `dev eswitch set ${PF} mode switchdev`)).toBe('');
    expect(await ok('devlink', `dev eswitch show ${PF}`)).toBe(`${PF}: mode switchdev inline-mode none encap-mode basic\n`);
    expect(await ok('devlink', `dev eswitch set ${PF} mode legacy`)).toBe('');
  });
});

describe('ip link against vpfd: the PF and its VFs', () => {
  it('ip link show lists the PF (ifindex 1) and one representor per VF (ifindex N+2)', async () => {
    const out = await ok('ip', 'link show');
    expect(out.split('\n').filter((l) => /^\d+: /.test(l)).map((l) => l.split(':').slice(0, 2).join(':'))).toEqual(['1: uplink', '2: vf0', '3: vf1']);
  });
  it('ip link set pf vf N mac/vlan/qos/spoofchk/trust/state, then ip link show pf prints each VF as print_vfinfo does', async () => {
    await ok('ip', 'link set dev pf vf 0 mac 02:00:00:00:00:10 vlan 100 qos 3 spoofchk on trust off state enable');
    await ok('ip', 'link set dev pf vf 1 mac 02:00:00:00:00:11 spoofchk off trust on state auto');
    const lines = (await ok('ip', 'link show dev pf')).split('\n');
    expect(lines[0]).toMatch(/^1: uplink: <[A-Z_,]+> mtu 1500 qdisc \S+ state \S+ mode DEFAULT group default qlen \d+$/);
    expect(lines[1]).toMatch(/^ {4}link\/ether [0-9a-f:]{17} brd ff:ff:ff:ff:ff:ff$/);
    expect(lines, lines.join('\n')).toContain('    vf 0     link/ether 02:00:00:00:00:10 brd ff:ff:ff:ff:ff:ff, vlan 100, qos 3, spoof checking on, link-state enable, trust off');
    expect(lines).toContain('    vf 1     link/ether 02:00:00:00:00:11 brd ff:ff:ff:ff:ff:ff, spoof checking off, link-state auto, trust on');
  });
  it('ip -d link show pf works without ioctls (txqlen, numtxqueues, min/max mtu come in the reply)', async () => {
    const out = await ok('ip', '-d link show dev pf');
    expect(out).toMatch(/ minmtu \d+ maxmtu \d+ /);
    expect(out).toMatch(/ numtxqueues \d+ numrxqueues \d+ /);
  });
  it('ip -s link show pf prints the counters block (IFLA_STATS64)', async () => {
    const out = await ok('ip', '-s link show dev pf');
    expect(out).toContain('    RX:  bytes packets errors dropped  missed   mcast           \n');
    expect(out).toContain('    TX:  bytes packets errors dropped carrier collsns           \n');
  });
  it('ip -j -d -s link show pf parses, with the VF list', async () => {
    const [pf] = JSON.parse(await ok('ip', '-j -d -s link show dev pf')) as [{ ifname: string; txqlen: number; vfinfo_list: { vf: number; address: string }[]; stats64: object }];
    expect(pf.ifname).toBe('uplink');
    expect(pf.vfinfo_list.map((v) => [v.vf, v.address])).toEqual([[0, '02:00:00:00:00:10'], [1, '02:00:00:00:00:11']]);
    expect(pf.stats64).toBeTypeOf('object');
  });
  it('a VF the PF does not have: do_setvfinfo -> driver EINVAL, "RTNETLINK answers: Invalid argument", exit 2', async () => {
    const r = await g.run('ip', 'link set dev pf vf 7 mac 02:00:00:00:00:77'.split(' '));
    expect(r.rc).toBe(2);
    // With an extack ip prints it alone (libnetlink.c rtnl_talk_error); vpfd names the VF count (docs/protocol.md).
    expect(r.stderr).toMatch(/^(Error: .*\.|RTNETLINK answers: Invalid argument)\n$/);
  });
  it('qos above 7 is refused by the driver (mlx5: vlan > 4095 || qos > 7), exit 2', async () => {
    const r = await g.run('ip', 'link set dev pf vf 0 vlan 10 qos 9'.split(' '));
    expect(r.rc).toBe(2);
    expect(r.stderr).toMatch(/(RTNETLINK answers: Invalid argument|Error: .*\.)\n$/);
  });
  it('a device that does not exist: ip\'s own "Cannot find device", exit 1', async () => {
    const r = await g.run('ip', 'link set dev vf9 vf 0 mac 02:00:00:00:00:01'.split(' '));
    expect({ rc: r.rc, stderr: r.stderr }).toEqual({ rc: 1, stderr: 'Cannot find device "vf9"\n' });
  });
});
