// What Linux conntrack answers at a `ct` action, as flower's ct_state shows
// it: for the first packet of a connection it has never seen
// (nf_conntrack_core.c nf_conntrack_in with an empty table), and, in
// ConntrackTable, for the packets after a commit (the reply direction, then
// established). The reference classifier assumes +trk+new by default (what
// ofproto/trace is told); the offload tier runs real conntrack and judges
// with these.
import { CtState } from '../model.js';
import type { CtMeta, Packet } from '../packet.js';
import { tcpFirst, tcpOpens, tcpSegment, type TcpConn } from './tcptrack.js';

/** A NAT rewrite of one side of a packet: its address and/or port become these. */
export interface NatRewrite {
  side: 'src' | 'dst';
  addr?: string;
  port?: number;
}

/** What conntrack says of a packet at a `ct` action. */
export interface CtLookup {
  /** flower ct_state bits */
  state: number;
  /** The connection existed before this packet (confirmed): its mark and label, and its NAT binding for this direction. */
  known?: boolean;
  mark?: number;
  label?: string;
  nat?: NatRewrite;
}

/** The classifier's view of conntrack (ClassifyOptions.conntrack). */
export interface Conntrack {
  lookup(p: Packet, zone: number): CtLookup;
  /** A `ct commit` confirmed p's connection in `zone` (p as it reached the action), with a new NAT binding if one was set up. */
  commit?(p: Packet, zone: number, ct: CtMeta, nat?: NatRewrite): void;
}

const NEW = CtState.TRACKED | CtState.NEW;
/** No connection: nf_ct_get() is NULL after the action, which flower (skb_flow_dissect_ct) and OVS (ovs_ct_update_key) both show as +trk+inv. */
const INVALID = CtState.TRACKED | CtState.INVALID;

/** nf_conntrack_proto_icmp.c valid_new: echo, timestamp, information and address-mask requests. */
const ICMP_NEW = new Set([8, 13, 15, 17]);
/** nf_conntrack_proto_icmpv6.c valid_new: echo request and node information query. */
const ICMPV6_NEW = new Set([128, 139]);

/**
 * The ct_state a first packet gets (flower bits). `checksumsValid` says the
 * frame's L4 checksum is right: conntrack checks it at PRE_ROUTING, the hook
 * act_ct and the OVS datapath both give (nf_conntrack_checksum=1), and takes a
 * bad one as invalid.
 */
export function firstPacketState(p: Packet, checksumsValid = true): number {
  const ip = p.ip;
  if (!ip) return 0; // act_ct.c drops what is not IP before conntrack (tcf_ct_skb_nf_family)
  if (!checksumsValid) return INVALID;
  switch (ip.proto) {
    case 6:
      return tcpOpens(p.tcpFlags ?? 0) ? NEW : INVALID;
    case 1:
      // icmp_error first: error types need the offending packet's connection, which a first packet has none of
      return ip.version === 4 && ICMP_NEW.has(p.icmp?.type ?? -1) ? NEW : INVALID;
    case 58:
      // icmpv6_error untracks MLD and neighbour discovery (noct_valid_new); nf_ct_get() is NULL then too
      return ip.version === 6 && ICMPV6_NEW.has(p.icmp?.type ?? -1) ? NEW : INVALID;
    case 132:
      // nf_conntrack_proto_sctp.c: a new association needs an INIT chunk (sctp_new), and a CRC32c (sctp_error)
      return INVALID;
    default:
      return NEW; // udp, udplite and the generic tracker take any first packet
  }
}

/** Every packet a connection's first: a fresh table for each. */
export const firstPackets: Conntrack = { lookup: (p) => ({ state: firstPacketState(p) }) };

/** A packet's key in its own direction: zone, protocol, addresses and ports (ICMP echo: its identifier, one here). */
const tupleOf = (zone: number, proto: number, src: string, dst: string, sport?: number, dport?: number) => `${zone}|${proto}|${src}|${dst}|${sport ?? 1}|${dport ?? 1}`;
const tracked = (p: Packet) => {
  const ip = p.ip;
  if (!ip) return false;
  const icmpEcho = (ip.proto === 1 && [0, 8].includes(p.icmp?.type ?? -1)) || (ip.proto === 58 && [128, 129].includes(p.icmp?.type ?? -1));
  // TCP when the segment's sequence space is given (tcptrack.ts tracks its window); otherwise a first packet.
  return ip.proto === 17 || icmpEcho || (ip.proto === 6 && p.tcpSeg !== undefined);
};
/** nf_conntrack_proto_icmp.c icmp_is_err / icmpv6 types below 128: errors, which relate to the connection they carry. */
const icmpError = (p: Packet) =>
  p.icmp?.inner !== undefined && ((p.ip?.proto === 1 && [3, 4, 5, 11, 12].includes(p.icmp.type)) || (p.ip?.proto === 58 && p.icmp.type < 128));
/** ICMP and ICMPv6 echo share one key space (the addresses tell the families apart). */
const protoKey = (proto: number) => (proto === 58 ? 1 : proto);
const key = (zone: number, p: Packet) => tupleOf(zone, protoKey(p.ip!.proto), p.ip!.src, p.ip!.dst, p.l4?.src, p.l4?.dst);

interface Connection {
  mark: number;
  label: string;
  /** Its reply direction has been seen (IPS_SEEN_REPLY): both directions are then +est. */
  replied: boolean;
  /** The original direction's binding, and its reverse: a reply's other side put back to what the original had. */
  nat?: NatRewrite;
  unNat?: NatRewrite;
  /** A TCP connection's state and windows (nf_conntrack_proto_tcp.c). */
  tcp?: TcpConn;
  /** Its keys in byOrig and byReply, to forget it when TCP tracking kills it. */
  keys: [string, string];
}

/**
 * Conntrack across the packets of one test: connections a `ct commit`
 * confirmed, for UDP and ICMP echo (whose state is their direction alone),
 * and TCP segments that give their sequence space (Packet.tcpSeg; tcptrack.ts
 * follows the state table and the window; without it a TCP packet is a first
 * packet here). nf_conntrack_core.c resolve_normal_ct: a packet of the
 * original direction is IP_CT_NEW until a reply was seen, then
 * IP_CT_ESTABLISHED; a reply is IP_CT_ESTABLISHED_REPLY (flower +est+rpl).
 * A NAT binding set up at the commit is kept: a reply is found by the NATed
 * tuple and a `ct nat` puts it back (nf_nat_packet's reverse manip).
 */
export class ConntrackTable implements Conntrack {
  /** By the original direction's tuple, and by the tuple its replies carry (after NAT). */
  private readonly byOrig = new Map<string, Connection>();
  private readonly byReply = new Map<string, Connection>();

  lookup(p: Packet, zone: number): CtLookup {
    if (icmpError(p)) return this.related(p, zone);
    if (!tracked(p)) return { state: firstPacketState(p) };
    const k = key(zone, p);
    const orig = this.byOrig.get(k);
    if (orig) {
      const v = orig.tcp ? tcpSegment(orig.tcp, p, 0, orig.replied) : 'accept';
      // tcp_packet returning -NF_ACCEPT leaves no connection on the packet (nf_conntrack_in): +trk+inv.
      if (v === 'invalid') return { state: INVALID };
      // A SYN reopening a closed connection: nf_ct_kill, then nf_conntrack_in looks it up again (-NF_REPEAT).
      if (v === 'repeat') return this.forget(orig), this.lookup(p, zone);
      if (v === 'killed') this.forget(orig); // nf_ct_kill_acct: the packet keeps the connection, the table does not
      return { state: CtState.TRACKED | (orig.replied ? CtState.ESTABLISHED : CtState.NEW), known: true, mark: orig.mark, label: orig.label, ...(orig.nat ? { nat: orig.nat } : {}) };
    }
    const reply = this.byReply.get(k);
    if (reply) {
      const v = reply.tcp ? tcpSegment(reply.tcp, p, 1, reply.replied) : 'accept';
      if (v === 'invalid') return { state: INVALID };
      if (v === 'repeat') return this.forget(reply), this.lookup(p, zone);
      if (v === 'killed') this.forget(reply);
      reply.replied = true;
      return { state: CtState.TRACKED | CtState.ESTABLISHED | CtState.REPLY, known: true, mark: reply.mark, label: reply.label, ...(reply.unNat ? { nat: reply.unNat } : {}) };
    }
    // An ICMP echo reply with no request before it opens nothing (firstPacketState: invalid).
    return { state: firstPacketState(p) };
  }

  /**
   * icmp_error_message: the connection of the packet an error carries, found by that packet's tuple reversed.
   * It relates to the error: IP_CT_RELATED, plus IS_REPLY when the carried packet went in the original direction
   * (the error comes back against it): flower +trk+rel(+rpl). No connection: invalid. NATed connections' errors
   * are not modelled (the inner header would be put back too).
   */
  private related(p: Packet, zone: number): CtLookup {
    const i = p.icmp!.inner!;
    const carried = tupleOf(zone, protoKey(i.proto), i.src, i.dst, i.sport, i.dport);
    const asOrig = this.byOrig.get(carried), asReply = this.byReply.get(carried);
    const c = asOrig ?? asReply;
    if (!c) return { state: INVALID };
    return { state: CtState.TRACKED | CtState.RELATED | (asOrig ? CtState.REPLY : 0), known: true, mark: c.mark, label: c.label };
  }

  private forget(c: Connection): void {
    this.byOrig.delete(c.keys[0]);
    this.byReply.delete(c.keys[1]);
  }

  commit(p: Packet, zone: number, ct: CtMeta, nat?: NatRewrite): void {
    if (!tracked(p)) return;
    const k = key(zone, p);
    const known = this.byOrig.get(k) ?? this.byReply.get(k);
    if (known) {
      known.mark = ct.mark;
      known.label = ct.label;
      return;
    }
    const ip = p.ip!;
    const orig = { src: ip.src, dst: ip.dst, sport: p.l4?.src, dport: p.l4?.dst };
    const after = { ...orig };
    let unNat: NatRewrite | undefined;
    if (nat) {
      const port = nat.side === 'src' ? 'sport' : 'dport';
      if (nat.addr) after[nat.side] = nat.addr;
      if (nat.port !== undefined && p.l4) after[port] = nat.port;
      // A reply comes to the NATed side: its other side goes back to what the original had there.
      const back = orig[port];
      unNat = { side: nat.side === 'src' ? 'dst' : 'src', addr: orig[nat.side], ...(back !== undefined ? { port: back } : {}) };
    }
    const tcp = ip.proto === 6 ? tcpFirst(p) : undefined;
    if (ip.proto === 6 && !tcp) return;
    const keys: [string, string] = [k, tupleOf(zone, protoKey(ip.proto), after.dst, after.src, after.dport, after.sport)];
    const c: Connection = { mark: ct.mark, label: ct.label, replied: false, ...(nat ? { nat, unNat } : {}), ...(tcp ? { tcp } : {}), keys };
    this.byOrig.set(keys[0], c);
    this.byReply.set(keys[1], c);
  }
}
