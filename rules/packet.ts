// A parsed packet as the flow dissector sees it (net/core/flow_dissector.c):
// the reference classifier (rules/classify.ts) reads it and the translator's
// property tests turn it into an `ofproto/trace` flow. Only headers flower can
// match or rewrite are modelled. JSON-safe, like the rule model.

export interface VlanTag {
  tpid: number; // 0x8100 or 0x88a8
  vid: number;
  pcp: number;
}

export interface MplsLse {
  label: number;
  tc: number;
  bos: number;
  ttl: number;
}

/** 'no' = not a fragment, 'first' = offset 0 with MF, 'later' = offset > 0. */
export type FragKind = 'no' | 'first' | 'later';

export interface IpHeader {
  version: 4 | 6;
  src: string;
  dst: string;
  proto: number; // protocol / next header
  tos: number; // TOS byte or IPv6 traffic class
  ttl: number; // TTL or hop limit
  frag: FragKind;
}

export interface L4Ports {
  src: number;
  dst: number;
}

export interface TunnelMeta {
  id: number;
  src: string;
  dst: string;
  dstPort: number;
  tos: number;
  ttl: number;
}

/** The offending packet's IP header and first 8 L4 bytes (UDP here) inside an ICMP error. */
export interface IcmpInner {
  src: string;
  dst: string;
  proto: number;
  sport: number;
  dport: number;
}

export interface CtMeta {
  /** flower ct_state bits (rules/model.ts CtState); 0 = untracked. */
  state: number;
  zone: number;
  mark: number;
  label: string; // 32 hex digits
  /**
   * A `ct commit` of this zone confirmed the connection earlier in this pass
   * (nf_conntrack_confirm): a later NAT sets nothing up (nf_nat_setup_info
   * returns at "Can't setup nat info for confirmed ct").
   */
  confirmed?: boolean;
}

/** What nf_conntrack_proto_tcp.c tcp_in_window reads of a segment (no options: no SACK, no window scaling). */
export interface TcpSegment {
  seq: number;
  ack: number;
  window: number;
  /** Bytes of data after the header. */
  dataLen: number;
}

export interface Packet {
  /** Representor whose rules classify the packet: 'uplink' or 'vfN'. */
  inDev: string;
  dstMac: string;
  srcMac: string;
  /** Outermost first. */
  vlans: VlanTag[];
  /** Innermost ethertype (after all VLAN tags). */
  ethType: number;
  mpls?: MplsLse[];
  ip?: IpHeader;
  /** Present when ip.proto is TCP/UDP/SCTP and the packet is not a fragment. */
  l4?: L4Ports;
  tcpFlags?: number;
  /** The TCP segment's sequence space, which conntrack's window tracking reads; absent: seq 1, ack 0, window 8192, 8 bytes of data. */
  tcpSeg?: TcpSegment;
  /** An ICMP error also carries the start of the packet it is about (RFC 792): what conntrack relates it by. */
  icmp?: { type: number; code: number; inner?: IcmpInner };
  arp?: { op: number; sip: string; tip: string; sha: string; tha: string };
  ct: CtMeta;
  tunnel?: TunnelMeta;
  /** skb->mark and skb->priority, which skbedit writes. */
  mark: number;
  priority: number;
}

/** Where a copy of the packet ends up. */
export type Destination =
  | { kind: 'port'; dev: string } // out of the VF / wire that representor `dev` stands for
  | { kind: 'rep'; dev: string }; // up the representor `dev` to the guest (slow path)

export interface Emit {
  to: Destination;
  packet: Packet;
  /** A mirror copy (the packet goes on): hardware defers it, and a hand-off never sends it (handOffRestores). */
  copy?: true;
}

/** One rule evaluation in the trace: which filter matched and what its actions returned. */
export interface TraceStep {
  chain: number;
  prio: number;
  handle: number;
  verdict: string;
}

export interface Outcome {
  /** Every copy that leaves, in order: mirrors first, then the final one. Empty = dropped. */
  emits: Emit[];
  /** How classification ended. */
  final: 'redirected' | 'dropped' | 'slowpath';
  /** Dropped for going round: more gotos and reclassifies than cls_api.c's tcf_classify allows (a loop of chains). */
  looped?: true;
  trace: TraceStep[];
}
