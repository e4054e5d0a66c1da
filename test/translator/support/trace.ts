// Runs `ovs-appctl ofproto/trace` on a private OVS and reads back what the
// datapath would do: each output (as an OpenFlow port) with the packet as
// rewritten by then. Datapath actions are the truth of a trace; odp port
// numbers map back to OpenFlow ports through `dpif/show`.
import { bytesToIp, bytesToMac, ipToBytes, macToBytes } from '../../../rules/addr.js';
import type { Packet } from '../../../rules/packet.js';
import type { PrivateOvs } from '../../harness/ovs.js';

export interface TracedOutput {
  ofport: number;
  packet: Packet;
}

export async function odpToOfport(ovs: PrivateOvs, bridge: string): Promise<Map<number, number>> {
  const text = await ovs.appctl('dpif/show');
  const map = new Map<number, number>();
  let inBridge = false;
  for (const line of text.split('\n')) {
    const b = /^\s{2}(\S+):$/.exec(line);
    if (b) inBridge = b[1] === bridge;
    const p = /^\s+\S+ (\d+)\/(\d+):/.exec(line);
    if (p && inBridge) map.set(Number(p[2]), Number(p[1]));
  }
  return map;
}

/** The ofproto/trace flow for a packet entering on OpenFlow port `inPort`. */
export function packetFlow(p: Packet, inPort: number): string {
  const f = [`in_port=${inPort}`, `dl_src=${p.srcMac}`, `dl_dst=${p.dstMac}`];
  const tag = p.vlans[0];
  if (tag) f.push(`dl_vlan=${tag.vid}`, `dl_vlan_pcp=${tag.pcp}`);
  // With vlan-limit 1 (the default), OVS parses one tag: the next tag's TPID is dl_type and nothing after it is parsed.
  const inner = p.vlans[1];
  f.push(`dl_type=0x${(inner ? inner.tpid : p.ethType).toString(16)}`);
  if (inner) return f.join(',');
  if (p.ip) {
    const v6 = p.ip.version === 6;
    f.push(v6 ? `ipv6_src=${p.ip.src}` : `nw_src=${p.ip.src}`, v6 ? `ipv6_dst=${p.ip.dst}` : `nw_dst=${p.ip.dst}`);
    f.push(`nw_proto=${p.ip.proto}`, `nw_tos=${p.ip.tos & 0xfc}`, `nw_ecn=${p.ip.tos & 3}`, `nw_ttl=${p.ip.ttl}`, `nw_frag=${p.ip.frag}`);
    // OVS, like flower, leaves L4 of fragments unparsed (frag_handling normal).
    if (p.ip.frag === 'no') {
      const l4 = p.ip.proto === 6 ? 'tcp' : p.ip.proto === 17 ? 'udp' : p.ip.proto === 132 ? 'sctp' : undefined;
      if (p.l4 && l4) f.push(`${l4}_src=${p.l4.src}`, `${l4}_dst=${p.l4.dst}`);
      if (p.ip.proto === 6 && p.tcpFlags !== undefined) f.push(`tcp_flags=0x${p.tcpFlags.toString(16)}`);
      const icmp = p.ip.proto === 1 ? 'icmp' : p.ip.proto === 58 ? 'icmpv6' : undefined;
      if (p.icmp && icmp) f.push(`${icmp}_type=${p.icmp.type}`, `${icmp}_code=${p.icmp.code}`);
    }
  }
  if (p.arp) f.push(`arp_op=${p.arp.op}`, `arp_spa=${p.arp.sip}`, `arp_tpa=${p.arp.tip}`, `arp_sha=${p.arp.sha}`, `arp_tha=${p.arp.tha}`);
  return f.join(',');
}

/** A set action's key=value[/mask] pairs; a masked set (OVS's set_masked) writes only the mask's bits. */
function fields(s: string): Record<string, { value: string; mask?: string }> {
  const out: Record<string, { value: string; mask?: string }> = {};
  for (const kv of s.split(',')) {
    const [k, v] = kv.split('=');
    if (k && v !== undefined) {
      const [value, mask] = v.split('/');
      out[k.trim()] = { value: value!, mask };
    }
  }
  return out;
}

const setBytes = (old: Uint8Array, f: { value: string; mask?: string }, parse: (x: string) => Uint8Array): Uint8Array => {
  const v = parse(f.value), m = f.mask === undefined ? undefined : parse(f.mask);
  return m ? old.map((b, i) => (b & ~m[i]!) | (v[i]! & m[i]!)) : v;
};
const mac = (old: string, f: { value: string; mask?: string }) => bytesToMac(setBytes(macToBytes(old), f, macToBytes));
const ip = (old: string, f: { value: string; mask?: string }) => bytesToIp(setBytes(ipToBytes(old), f, ipToBytes));
const num = (old: number, f: { value: string; mask?: string }) => (f.mask === undefined ? Number(f.value) : (old & ~Number(f.mask)) | (Number(f.value) & Number(f.mask)));

/** An address in a datapath nat(): IPv6 is bracketed when a port follows (odp-util.c format_odp_ct_nat). */
const ADDR = String.raw`\[[^\]]+\]|\d+\.\d+\.\d+\.\d+|[0-9a-f:]+`;
/** ct(...,nat(src|dst=MIN[-MAX][:PORT[-PORT]])): the side, the first address and the first port. */
const NAT = new RegExp(String.raw`^ct\(.*\bnat\((src|dst)=(${ADDR})(?:-(?:${ADDR}))?(?::(\d+))?`);

/** Splits a datapath action list at top-level commas. */
export function topLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0, cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) out.push(cur);
  return out.map((x) => x.trim()).filter(Boolean);
}

export async function trace(ovs: PrivateOvs, bridge: string, p: Packet, inPort: number, odp: Map<number, number>, ctNext: string[] = []): Promise<{ outputs: TracedOutput[]; raw: string }> {
  const args = ['ofproto/trace', bridge, packetFlow(p, inPort)];
  for (const c of ctNext) args.push('--ct-next', c);
  const raw = await ovs.appctl(...args);
  const pkt: Packet = structuredClone(p);
  const outputs: TracedOutput[] = [];
  const lines = raw.split('\n').filter((l) => l.startsWith('Datapath actions:'));
  // The datapath's ct() reassembles first (ovs_ct_execute, as act_ct.c): a lone fragment is held there, and
  // nothing after it, nor any recirculation, sees it. ofproto/trace does not simulate that; this reading does.
  let held = false;
  // The zone whose connection a ct(commit) confirmed in this pass: conntrack sets NAT up on unconfirmed ones only.
  let confirmedZone: number | undefined;
  for (const line of lines) {
    const acts = line.slice('Datapath actions:'.length).trim();
    if (acts === 'drop' || held) continue;
    for (const a of topLevel(acts)) {
      if (/^ct\(/.test(a) && pkt.ip && pkt.ip.frag !== 'no') {
        held = true;
        break;
      }
      if (/^\d+$/.test(a)) {
        outputs.push({ ofport: odp.get(Number(a)) ?? -Number(a), packet: structuredClone(pkt) });
        continue;
      }
      const set = /^set\((\w+)\((.*)\)\)$/.exec(a);
      if (set) {
        const f = fields(set[2]!);
        if (set[1] === 'eth') {
          if (f.src) pkt.srcMac = mac(pkt.srcMac, f.src);
          if (f.dst) pkt.dstMac = mac(pkt.dstMac, f.dst);
        } else if ((set[1] === 'ipv4' || set[1] === 'ipv6') && pkt.ip) {
          if (f.src) pkt.ip.src = ip(pkt.ip.src, f.src);
          if (f.dst) pkt.ip.dst = ip(pkt.ip.dst, f.dst);
          const ttl = f.ttl ?? f.hlimit, tos = f.tos ?? f.tclass;
          if (ttl) pkt.ip.ttl = num(pkt.ip.ttl, ttl);
          if (tos) pkt.ip.tos = num(pkt.ip.tos, tos);
        } else if ((set[1] === 'tcp' || set[1] === 'udp' || set[1] === 'sctp') && pkt.l4) {
          if (f.src) pkt.l4.src = num(pkt.l4.src, f.src);
          if (f.dst) pkt.l4.dst = num(pkt.l4.dst, f.dst);
        }
        continue;
      }
      const push = /^push_vlan\((.*)\)$/.exec(a);
      if (push) {
        const f = fields(push[1]!);
        pkt.vlans.unshift({ tpid: f.tpid ? Number(f.tpid.value) : 0x8100, vid: Number(f.vid?.value ?? 0), pcp: Number(f.pcp?.value ?? 0) });
        continue;
      }
      if (a === 'pop_vlan') {
        pkt.vlans.shift();
        continue;
      }
      // ct(...,nat(src|dst=MIN[-MAX][:PORT[-PORT]])) rewrites the packet in place in the datapath (act_ct.c does
      // the same); ofproto/trace only simulates it on a recirculation, taking the first address and port
      // (ofproto-dpif-trace.c), as rules/classify.ts does: that model here for every ct().
      const ct = /^ct\((.*)\)$/.exec(a);
      const zone = ct ? Number(/\bzone=(\d+)/.exec(ct[1]!)?.[1] ?? 0) : undefined;
      if (a === 'ct_clear' || (zone !== undefined && zone !== confirmedZone)) confirmedZone = undefined;
      const nat = NAT.exec(a);
      const confirmed = zone !== undefined && zone === confirmedZone;
      if (ct && /(?:^|,)commit(?:,|$)/.test(ct[1]!)) confirmedZone = zone;
      if (nat && pkt.ip && !confirmed) {
        const side = nat[1] as 'src' | 'dst';
        pkt.ip[side] = bytesToIp(ipToBytes(nat[2]!.replace(/[[\]]/g, '')));
        if (nat[3] !== undefined && pkt.l4) pkt.l4[side] = Number(nat[3]);
        continue;
      }
      // recirc(), meter(), sample(), userspace() and ct() without NAT change nothing the comparison looks at.
    }
  }
  return { outputs, raw };
}
