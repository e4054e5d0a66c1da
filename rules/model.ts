// The tc flower rule model: one plain value per filter, as OVS lib/tc.h keeps
// `struct tc_flower`. Every codec (tc syntax, netlink) and every consumer
// (classifier, translator, daemon) speaks this type. It is JSON-safe on purpose:
// the journal stores it and `vpfctl rule parse` prints it.
//
// Conventions
// - Numbers are host-order values (the codecs own byte order, see docs/rules.md).
// - Addresses are canonical strings (rules/addr.ts): MAC lower-case colon form,
//   IPv4 dotted quad, IPv6 RFC 5952. Masks use the same form as their value.
// - A key absent from `match` is a wildcard. A key present without a mask in the
//   netlink form is exact (cls_flower.c fl_set_key_val: missing mask = all ones),
//   so `Masked.mask` is always filled in: the model has no "implicit" masks.

/** A value and the bits of it that are compared (1 = compared). */
export interface Masked<T> {
  value: T;
  mask: T;
}

/** Inclusive port range (TCA_FLOWER_KEY_PORT_{SRC,DST}_{MIN,MAX}); min < max (cls_flower.c fl_set_key_port_range). */
export interface PortRange {
  min: number;
  max: number;
}

/** One Geneve option TLV as a raw value/mask pair (TCA_FLOWER_KEY_ENC_OPTS_GENEVE). */
export interface GeneveOpt {
  class: number; // u16
  type: number; // u8
  data: string; // hex, length a multiple of 8 hex digits (4-byte words)
}

export interface EncOpts {
  geneve?: { value: GeneveOpt[]; mask: GeneveOpt[] };
  vxlanGbp?: Masked<number>;
}

/** Match keys (TCA_FLOWER_KEY_*). Field names follow tc-flower(8) keywords. */
export interface FlowerMatch {
  indev?: string;
  /** TCA_FLOWER_KEY_ETH_TYPE: the ethertype the request names (the outer TPID for VLAN filters). */
  ethType?: number;
  dstMac?: Masked<string>;
  srcMac?: Masked<string>;
  /** Number of VLAN tags (TCA_FLOWER_KEY_NUM_OF_VLANS). */
  numOfVlans?: number;
  vlanId?: number;
  vlanPrio?: number;
  vlanEthType?: number;
  cvlanId?: number;
  cvlanPrio?: number;
  cvlanEthType?: number;
  mplsLabel?: number;
  mplsTc?: number;
  mplsBos?: number;
  mplsTtl?: number;
  ipProto?: number;
  ipTos?: Masked<number>;
  ipTtl?: Masked<number>;
  srcIp?: Masked<string>; // IPv4 or IPv6, family from the string
  dstIp?: Masked<string>;
  /** L4 ports; which attribute (TCP/UDP/SCTP) follows ipProto. */
  srcPort?: Masked<number>;
  dstPort?: Masked<number>;
  srcPortRange?: PortRange;
  dstPortRange?: PortRange;
  tcpFlags?: Masked<number>; // 12 bits, FIN=0x001 .. NS=0x100
  /** ICMP / ICMPv6 type and code; which attribute follows ipProto (1 or 58). */
  icmpType?: Masked<number>;
  icmpCode?: Masked<number>;
  arpSip?: Masked<string>;
  arpTip?: Masked<string>;
  arpOp?: Masked<number>;
  arpSha?: Masked<string>;
  arpTha?: Masked<string>;
  /** TCA_FLOWER_KEY_FLAGS: bit 0 = is fragment, bit 1 = first fragment (IpFlag). */
  ipFlags?: Masked<number>;
  /** TCA_FLOWER_KEY_CT_STATE in flower's own bit layout (CtState). */
  ctState?: Masked<number>;
  ctZone?: Masked<number>;
  ctMark?: Masked<number>;
  ctLabel?: Masked<string>; // 32 hex digits, big-endian 128 bits
  encKeyId?: number;
  encSrcIp?: Masked<string>;
  encDstIp?: Masked<string>;
  encDstPort?: Masked<number>;
  encTos?: Masked<number>;
  encTtl?: Masked<number>;
  encOpts?: EncOpts;
}

/** TCA_FLOWER_KEY_FLAGS bits (include/uapi/linux/pkt_cls.h TCA_FLOWER_KEY_FLAGS_*). */
export const IpFlag = {
  IS_FRAGMENT: 1,
  FRAG_IS_FIRST: 2,
} as const;

/** TCA_FLOWER_KEY_CT_FLAGS_* (pkt_cls.h). Note OVS swaps trk/rpl: see translator/. */
export const CtState = {
  NEW: 1 << 0,
  ESTABLISHED: 1 << 1,
  RELATED: 1 << 2,
  TRACKED: 1 << 3,
  INVALID: 1 << 4,
  REPLY: 1 << 5,
  RPL: 1 << 5,
  // Not in the kernel's policy mask before 5.19 but defined since: dnat/snat.
  DNAT: 1 << 6,
  SNAT: 1 << 7,
} as const;

/**
 * The verdict an action returns to act_api.c tcf_action_exec ("control" in
 * tc(8): `action ... pipe|continue|drop|...`). goto and jump carry an argument.
 */
export type Control =
  | { kind: 'pass' } // TC_ACT_OK
  | { kind: 'drop' } // TC_ACT_SHOT
  | { kind: 'pipe' } // TC_ACT_PIPE: next action
  | { kind: 'continue' } // TC_ACT_UNSPEC: next filter
  | { kind: 'reclassify' } // TC_ACT_RECLASSIFY
  | { kind: 'stolen' } // TC_ACT_STOLEN (mirred redirect's default)
  | { kind: 'trap' } // TC_ACT_TRAP
  | { kind: 'goto'; chain: number } // TC_ACT_GOTO_CHAIN | chain
  | { kind: 'jump'; count: number }; // TC_ACT_JUMP | count

interface ActionBase {
  /** Verdict after the action runs. */
  control: Control;
  /** Shared action index (tc_gen.index); 0 or absent = a new private action. */
  index?: number;
  /**
   * The user's cookie (TCA_ACT_COOKIE, at most 16 bytes, lowercase hex): kept
   * and dumped back as act_api.c keeps it. OVS's tc offload stamps each flow's
   * actions with its ufid there and finds its flows by it in dumps.
   */
  cookie?: string;
}

export interface GactAction extends ActionBase {
  kind: 'gact';
}

export interface MirredAction extends ActionBase {
  kind: 'mirred';
  direction: 'egress' | 'ingress';
  op: 'redirect' | 'mirror';
  dev: string;
}

export type VlanAction = ActionBase &
  (
    | { kind: 'vlan'; op: 'pop' }
    | { kind: 'vlan'; op: 'push'; id: number; prio?: number; protocol?: number }
    | { kind: 'vlan'; op: 'modify'; id: number; prio?: number; protocol?: number }
  );

/** pedit header types (TCA_PEDIT_KEY_EX_HTYPE_*), as the kernel offsets them. */
export type PeditHtype = 'network' | 'eth' | 'ip4' | 'ip6' | 'tcp' | 'udp';

/**
 * One 32-bit pedit key word as tc_pedit_key carries it: new = (old & mask) ^ val
 * for set (mask = bits kept); for add, new = old + val on the bits not kept.
 * `offset` is relative to the header, a multiple of 4. Values host-order words
 * whose byte 0 is the first byte on the wire.
 */
export interface PeditKey {
  htype: PeditHtype;
  cmd: 'set' | 'add';
  offset: number;
  mask: number;
  value: number;
}

export interface PeditAction extends ActionBase {
  kind: 'pedit';
  keys: PeditKey[];
}

export interface CsumAction extends ActionBase {
  kind: 'csum';
  /** TCA_CSUM_UPDATE_FLAG_* bits: iph 1, igmp 2, tcp 4, udp 8, udplite 16, sctp 32. */
  flags: number;
}

export type TunnelKeyAction = ActionBase &
  (
    | { kind: 'tunnel_key'; op: 'unset' }
    | {
        kind: 'tunnel_key';
        op: 'set';
        id?: number;
        srcIp?: string;
        dstIp?: string;
        dstPort?: number;
        tos?: number;
        ttl?: number;
        noCsum?: boolean;
        noFrag?: boolean;
        geneveOpts?: GeneveOpt[];
        vxlanGbp?: number;
      }
  );

export interface CtNat {
  /** 'src'/'dst' pick the manipulation; 'restore' is bare `nat` (TCA_CT_ACT_NAT only). */
  type: 'src' | 'dst' | 'restore';
  addrMin?: string;
  addrMax?: string;
  portMin?: number;
  portMax?: number;
}

export interface CtAction extends ActionBase {
  kind: 'ct';
  clear?: boolean;
  commit?: boolean;
  force?: boolean;
  zone?: number;
  mark?: Masked<number>;
  label?: Masked<string>;
  nat?: CtNat;
  helper?: { name: string; family: number; proto: number };
}

export interface PoliceAction extends ActionBase {
  kind: 'police';
  /** Byte rate in bytes per second (tc_ratespec.rate / TCA_POLICE_RATE64). */
  rate?: number;
  /** Burst in bytes (the wire carries psched ticks; the codec converts). */
  burst?: number;
  mtu?: number;
  peakrate?: number;
  avrate?: number;
  /** Packet rate (TCA_POLICE_PKTRATE64) and packet burst (TCA_POLICE_PKTBURST64). */
  pktsPerSec?: number;
  pktBurst?: number;
  /** Verdict for exceeding packets (tc_police.action). `control` is the conform verdict (TCA_POLICE_RESULT). */
  exceed: Control;
}

export interface SkbeditAction extends ActionBase {
  kind: 'skbedit';
  mark?: Masked<number>;
  priority?: number;
  ptype?: number;
  queueMapping?: number;
}

export interface SampleAction extends ActionBase {
  kind: 'sample';
  rate: number;
  group: number;
  trunc?: number;
}

export type MplsAction = ActionBase &
  (
    | { kind: 'mpls'; op: 'push' | 'mac_push'; protocol: number; label?: number; tc?: number; ttl?: number; bos?: number }
    | { kind: 'mpls'; op: 'pop'; protocol: number }
    | { kind: 'mpls'; op: 'modify'; label?: number; tc?: number; ttl?: number; bos?: number }
    | { kind: 'mpls'; op: 'dec_ttl' }
  );

export type Action =
  | GactAction
  | MirredAction
  | VlanAction
  | PeditAction
  | CsumAction
  | TunnelKeyAction
  | CtAction
  | PoliceAction
  | SkbeditAction
  | SampleAction
  | MplsAction;

export type ActionKind = Action['kind'];

export interface FilterFlags {
  skipSw: boolean;
  skipHw: boolean;
  verbose: boolean;
}

/** One flower filter on one representor. */
export interface FlowerRule {
  /** Representor: 'uplink' or 'vfN' (rules/ports.ts). */
  dev: string;
  direction: 'ingress' | 'egress';
  chain: number;
  /** tc prio/pref, 1..65535; 0 on a request means "kernel picks" (cls_api.c tcf_auto_prio). */
  prio: number;
  /** Filter handle; 0 on a request means "kernel allocates" (cls_flower.c fl_change). */
  handle: number;
  /** Ethertype named by `protocol` (host order); ETH_P_ALL (3) = all. */
  protocol: number;
  flags: FilterFlags;
  match: FlowerMatch;
  actions: Action[];
}

/** ETH_P_* values the model and codecs name (include/uapi/linux/if_ether.h). */
export const EthP = {
  ALL: 0x0003,
  IP: 0x0800,
  ARP: 0x0806,
  RARP: 0x8035,
  IPV6: 0x86dd,
  VLAN_8021Q: 0x8100,
  VLAN_8021AD: 0x88a8,
  MPLS_UC: 0x8847,
  MPLS_MC: 0x8848,
} as const;

/** IPPROTO_* values used by flower keys. */
export const IpProto = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ICMPV6: 58,
  SCTP: 132,
} as const;

/** What the daemon reports back about an installed filter (dump side). */
export interface FilterStats {
  packets: number;
  bytes: number;
  /** Milliseconds since the filter last matched (tcf_t.lastuse, in jiffies-free form). */
  lastUsedMs: number;
  /** Milliseconds since install (tcf_t.install). */
  installedMs: number;
  drops: number;
  inHw: boolean;
  inHwCount: number;
  /** Milliseconds since the first match (tcf_t.firstuse); absent or 0 = never matched, as the kernel reports it. */
  firstUsedMs?: number;
  /** Counters the hardware reported (TCA_STATS_BASIC_HW); absent = none, and `tc -s` prints no `Sent hardware` line. */
  hw?: { packets: number; bytes: number };
}
