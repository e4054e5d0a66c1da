// vpfctl rule, as an operator runs it: the built binary, real stdout, exit codes.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { captureNetlink } from '../helpers/nlcapture.js';

const bin = 'dist/bin/vpfctl.js';
const vpfctl = (...args: string[]) => execa('node', [bin, ...args], { reject: false });
const RULE = ['dev', 'vf0', 'ingress', 'prio', '1', 'protocol', 'ip', 'flower', 'ip_proto', 'tcp', 'dst_port', '80', 'action', 'mirred', 'egress', 'redirect', 'dev', 'vf1'];

describe('vpfctl rule', () => {
  it('is built (scripts/test.sh builds before testing)', () => {
    expect(existsSync(bin)).toBe(true);
  });

  it('parse prints the rule as JSON', async () => {
    const r = await vpfctl('rule', 'parse', '--', ...RULE);
    expect(r.exitCode).toBe(0);
    const rule = JSON.parse(r.stdout);
    expect(rule.match.dstPort).toEqual({ value: 80, mask: 0xffff });
    expect(rule.actions[0]).toMatchObject({ kind: 'mirred', dev: 'vf1' });
  });

  it('encode then decode gives the tc line back', async () => {
    const enc = await vpfctl('rule', 'encode', '--', ...RULE);
    expect(enc.exitCode).toBe(0);
    const dec = await vpfctl('rule', 'decode', enc.stdout.trim());
    expect(dec.exitCode).toBe(0);
    expect(dec.stdout.split('\n')[0]).toBe(`tc filter add ${RULE.slice(0, 5).join(' ')} protocol ip flower ip_proto tcp dst_port 80 action mirred egress redirect dev vf1`);
  });

  it('decode --devs reads bytes captured from a real tc with that host\'s ifindexes', async () => {
    const cap = await captureNetlink(['tc', 'filter', 'add', ...RULE], { devs: ['uplink', 'vf0', 'vf1'] });
    const msg = cap.messages.find((m) => m.readUInt16LE(4) === 44)!;
    const devs = Object.entries(cap.ifindex).map(([n, i]) => `${n}=${i}`).join(',');
    const dec = await vpfctl('rule', 'decode', '--devs', devs, msg.toString('hex'));
    expect(dec.exitCode).toBe(0);
    expect(dec.stdout).toContain('dst_port 80 action mirred egress redirect dev vf1');
  });

  it('errors exit 2 with one line naming the problem', async () => {
    const r = await vpfctl('rule', 'parse', '--', 'dev', 'vf0', 'ingress', 'protocol', 'ip', 'flower', 'dst_port', '80', 'action', 'drop');
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/ports need ip_proto tcp, udp or sctp \(EINVAL\)/);
    const bad = await vpfctl('rule', 'decode', 'zz');
    expect(bad.exitCode).toBe(2);
  });
});
