// Value syntax as iproute2 6.1 reads it (lib/utils.c get_u*, lib/ll_proto.c, f_flower.c).
// The forms and their meanings were checked against the real /usr/sbin/tc by capturing
// what it sends (test/rules/printer.test.ts does that for printFilter's output).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decOrHex, ethProto, ethProtoName, maskedIp, uint } from '../../rules/tcsyntax/lex.js';
import { parseLabel } from '../../rules/tcsyntax/keys.js';
import { parseFilter, printFilter, splitArgs } from '../../rules/tcsyntax/index.js';

const parse = (line: string) => {
  const r = parseFilter(splitArgs(line));
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
};
const fails = (line: string) => expect(parseFilter(splitArgs(line)).ok).toBe(false);

describe('numbers in the base each keyword reads', () => {
  it('base 0 reads hex and octal, base 10 reads leading zeros as decimal, base 16 reads bare hex', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => {
        expect(uint(String(n), 'x')).toBe(n);
        expect(uint(`0x${n.toString(16)}`, 'x')).toBe(n);
        expect(uint(`0${n.toString(8)}`, 'x')).toBe(n);
        expect(uint(`0${n}`, 'x', 0xffffffff, 10)).toBe(n);
        expect(uint(n.toString(16), 'x', 0xffffffff, 16)).toBe(n);
        expect(uint(`0x${n.toString(16)}`, 'x', 0xffffffff, 16)).toBe(n);
      }),
    );
  });

  it('tos/ttl read decimal first, then hex', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xff }), (n) => {
        expect(decOrHex(String(n), 'x', 0xff)).toBe(n);
        expect(decOrHex(`0x${n.toString(16)}`, 'x', 0xff)).toBe(n);
      }),
    );
    expect(decOrHex('1a', 'x', 0xff)).toBe(0x1a);
  });

  it('each flower keyword means what tc makes of it', () => {
    const m = (s: string) => parse(`dev vf0 ingress prio 1 ${s} action drop`).match;
    expect(m('protocol ip flower ip_proto 10').ipProto).toBe(0x10);
    expect(m('protocol ip flower ip_proto tcp dst_port 010').dstPort).toEqual({ value: 10, mask: 0xffff });
    expect(m('protocol ip flower ip_proto tcp tcp_flags 10/17').tcpFlags).toEqual({ value: 0x10, mask: 0x17 });
    expect(m('protocol ip flower ip_ttl 010').ipTtl).toEqual({ value: 10, mask: 0xff });
    expect(m('protocol ip flower ip_tos 0x10/f0').ipTos).toEqual({ value: 16, mask: 0xf0 });
    expect(m('protocol 802.1Q flower vlan_id 010').vlanId).toBe(10);
    expect(m('protocol ip flower ip_proto icmp type 08/017').icmpType).toEqual({ value: 8, mask: 17 });
    expect(m('protocol arp flower arp_op reply/15').arpOp).toEqual({ value: 2, mask: 15 });
    expect(m('protocol ip flower ip_flags frag/firstfrag/nofrag').ipFlags).toEqual({ value: 2, mask: 3 });
    expect(m('protocol ip flower dst_ip 10.1').dstIp).toEqual({ value: '10.1.0.0', mask: '255.255.255.255' });
    expect(m('protocol ip flower dst_ip 10/8').dstIp).toEqual({ value: '10.0.0.0', mask: '255.0.0.0' });
    expect(m('protocol ip flower geneve_opts 0102:80:00112233/ffff:ff:ffffffff,0103:81:44556677/fff0:0f:ffff0000').encOpts?.geneve?.mask[1]).toEqual({ class: 0xfff0, type: 0x0f, data: 'ffff0000' });
  });

  it('refuses what tc refuses where accepting would change the meaning or the kernel would see another rule', () => {
    fails('dev vf0 ingress protocol ip flower actions drop');
    fails('dev vf0 ingress protocol ipv6 flower ip_proto icmp action drop');
    fails('dev vf0 ingress protocol ip flower ip_proto TCP action drop');
    fails('dev vf0 ingress protocol ip flower ip_proto tcp dst_port 0 action drop');
    fails('dev vf0 ingress protocol ipv6 flower dst_ip 2001:db8::/ffff:ffff:: action drop');
    fails('dev vf0 ingress protocol ip flower ct_label 0x0102 action drop');
    fails('dev vf0 ingress protocol ip flower action tunnel_key set dst_ip 10.0.0.2 id 5');
    fails('dev vf0 ingress protocol ip flower action ct nat src addr 10.0.0.1');
  });
});

describe('ethertypes from lib/ll_proto.c', () => {
  it('names in any case and numbers in any base; the printed name reads back', () => {
    expect(ethProto('ipv4', 'p')).toBe(0x0800);
    expect(ethProto('IPv6', 'p')).toBe(0x86dd);
    expect(ethProto('lldp', 'p')).toBe(0x88cc);
    expect(ethProto('802.1q', 'p')).toBe(0x8100);
    expect(ethProto('2048', 'p')).toBe(0x0800);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), (p) => {
        expect(ethProto(ethProtoName(p), 'p')).toBe(p);
      }),
    );
  });

  it('vlan_ethtype takes them too, and dst_ip under it prints and reads back', () => {
    const r = parse('dev vf0 ingress prio 1 protocol 802.1Q flower vlan_id 1 vlan_ethtype ipv4 ip_proto tcp dst_ip 10.0.0.1 action drop');
    expect(r.match.vlanEthType).toBe(0x0800);
    expect(parse(printFilter(r).join(' '))).toEqual(r);
  });
});

describe('ct labels: hex pairs, zero-filled', () => {
  it('an odd trailing digit is ignored and the rest of the 16 bytes is zero, mask included', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a-f]{0,32}$/), fc.stringMatching(/^[0-9a-f]{0,32}$/), (v, m) => {
        const even = (x: string) => x.slice(0, x.length & ~1).padEnd(32, '0');
        expect(parseLabel(`${v}/${m}`, 'ct_label')).toEqual({ value: even(v), mask: even(m) });
        expect(parseLabel(v, 'ct_label')).toEqual({ value: even(v), mask: 'f'.repeat(32) });
      }),
    );
  });
});

describe('IPv4 as get_addr_ipv4 reads it', () => {
  it('one to four parts, each in base 0, the missing ones zero', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 4 }), (parts) => {
        const full = [...parts, 0, 0, 0].slice(0, 4).join('.');
        expect(maskedIp(parts.join('.'), 'ip').value).toBe(full);
        expect(maskedIp(parts.map((p) => `0x${p.toString(16)}`).join('.'), 'ip').value).toBe(full);
      }),
    );
  });
});

describe('police as OVS sends it (m_police.c act_parse_police)', () => {
  it('a police naming a shared index needs no rate, and prints back to the same rule', () => {
    const r = parse('dev vf0 ingress prio 1 protocol ip flower action police index 7 conform-exceed drop/pipe action mirred egress redirect dev vf1');
    expect(r.actions[0]).toMatchObject({ kind: 'police', index: 7, exceed: { kind: 'drop' }, control: { kind: 'pipe' } });
    expect((r.actions[0] as { rate?: number }).rate).toBeUndefined();
    expect(parse(printFilter(r).join(' '))).toEqual(r);
  });
  it('an unnamed police without rate, avrate, mtu or pkts_rate is refused', () => {
    fails('dev vf0 ingress prio 1 protocol ip flower action police conform-exceed drop/pipe');
  });
});
