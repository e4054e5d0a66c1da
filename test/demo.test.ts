// The README's first command, end to end: real traffic between network
// namespaces obeys rules installed through the guest channel (redirect, drop,
// mirror), the guest's own tc/ip/devlink show it (vpfctl guest), and nothing
// is left running afterwards.
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

describe('scripts/demo.sh', () => {
  it('shows traffic obeying the offloaded rules and cleans up', async () => {
    // Namespace names are host-wide: this run's are its own, so a demo (or another run) beside it is untouched.
    const tag = `vpft${process.pid}`;
    const env = { DEMO_NS: `${tag}demo`, POD_PREFIX: `${tag}-`, OVS_DIR: `/tmp/${tag}-demo-ovs`, STATE: `/tmp/${tag}-demo-state` };
    const r = await execa('bash', ['scripts/demo.sh'], { reject: false, timeout: 240_000, env });
    expect(r.stdout).toContain('pod0 -> pod2 udp/5000: sent 20, arrived 0 (rule: drop)');
    expect(r.stdout).toContain('pod0 -> pod1 udp/6000: sent 20, arrived 20');
    expect(r.stdout).toContain('traffic obeyed the offloaded rules and the legacy VF settings');
    // The guest's own devlink and ip printed these (vpfctl guest), not a printer of ours.
    expect(r.stdout).toMatch(/^ {2}pci\/0000:00:00\.0: mode legacy inline-mode \w+ encap-mode \w+$/m);
    expect(r.stdout).toMatch(/^ +vf 2 +link\/ether [0-9a-f:]{17} brd ff:ff:ff:ff:ff:ff, .*link-state disable/m);
    expect(r.exitCode).toBe(0);
    const netns = (await execa('ip', ['netns', 'list'])).stdout;
    expect(netns).not.toContain(tag);
  }, 300_000);
});
