// Legacy-mode VF settings: what `ip link set PF vf N ...` configures on a
// NIC's embedded switch (if_link.h struct ifla_vf_*), and the eswitch mode
// (devlink.h DEVLINK_ESWITCH_MODE_*). Plain data, shared by the netlink codec
// (rules/netlink/link.ts), the translator (translator/legacy.ts) and the daemon.

/** include/uapi/linux/if_link.h IFLA_VF_LINK_STATE_*. */
export const VfLinkState = { AUTO: 0, ENABLE: 1, DISABLE: 2 } as const;
export type VfLinkStateName = 'auto' | 'enable' | 'disable';

export const VLAN_PROTO_8021Q = 0x8100;
export const VLAN_PROTO_8021AD = 0x88a8;

/** The administrator's settings of one VF (mlx5 vport->info; kept across eswitch mode changes). */
export interface VfSettings {
  /** Admin MAC, "00:00:00:00:00:00" when unset (mlx5 allows zero; multicast is EINVAL). */
  mac: string;
  /** Port VLAN (VST): 0 = none, the VF tags its own frames (VGT). */
  vlan: number;
  /** PCP of the pushed tag, 0..7. */
  qos: number;
  /** TPID of the pushed tag: 0x8100 or 0x88a8. */
  vlanProto: number;
  spoofchk: boolean;
  trust: boolean;
  linkState: VfLinkStateName;
  /** Mbps, 0 = unlimited (IFLA_VF_RATE max_tx_rate; IFLA_VF_TX_RATE sets it too). */
  maxTxRate: number;
  /** Mbps, 0 = no guarantee. */
  minTxRate: number;
  /**
   * query_rss; undefined = never set, reported as -1 (rtnl_fill_vfinfo's
   * default, which mlx5 leaves: it has no ndo_set_vf_rss_query_en). Only a host
   * VF backend whose NIC accepted it sets it.
   */
  rssQuery?: boolean;
  /**
   * The guest's receive mode for the VF (virtio-net VIRTIO_NET_CTRL_RX, seen by
   * QEMU; carried on the channel, docs/protocol.md). Honoured only when trusted,
   * as mlx5 esw_update_vport_rx_mode does.
   */
  promisc: boolean;
  allmulti: boolean;
}

/** mlx5 defaults after SR-IOV enable: spoofchk off, trust off, link auto. */
export function defaultVfSettings(): VfSettings {
  return {
    mac: '00:00:00:00:00:00',
    vlan: 0,
    qos: 0,
    vlanProto: VLAN_PROTO_8021Q,
    spoofchk: false,
    trust: false,
    linkState: 'auto',
    maxTxRate: 0,
    minTxRate: 0,
    promisc: false,
    allmulti: false,
  };
}

/** One guest request for one VF, as decoded from IFLA_VF_INFO (absent = unchanged). */
export interface VfRequest {
  vf: number;
  mac?: string;
  /** IFLA_VF_VLAN (always 802.1Q) or the single IFLA_VF_VLAN_LIST entry. */
  vlan?: { vlan: number; qos: number; proto: number };
  /** IFLA_VF_TX_RATE: max rate only, min kept. */
  txRate?: number;
  /** IFLA_VF_RATE. */
  rate?: { min: number; max: number };
  spoofchk?: boolean;
  linkState?: number;
  rssQuery?: boolean;
  trust?: boolean;
}

/** Per-VF counters, as IFLA_VF_STATS reports them (u64; bigint keeps them exact). */
export interface VfStats {
  rxPackets: bigint;
  txPackets: bigint;
  rxBytes: bigint;
  txBytes: bigint;
  broadcast: bigint;
  multicast: bigint;
  rxDropped: bigint;
  txDropped: bigint;
}

export function zeroVfStats(): VfStats {
  return { rxPackets: 0n, txPackets: 0n, rxBytes: 0n, txBytes: 0n, broadcast: 0n, multicast: 0n, rxDropped: 0n, txDropped: 0n };
}

/** devlink.h DEVLINK_ESWITCH_MODE_*. */
export const EswitchMode = { LEGACY: 0, SWITCHDEV: 1 } as const;
export type EswitchModeName = 'legacy' | 'switchdev';

export const linkStateName = (n: number): VfLinkStateName | undefined => (['auto', 'enable', 'disable'] as const)[n];
export const linkStateValue = (s: VfLinkStateName): number => VfLinkState[s.toUpperCase() as 'AUTO' | 'ENABLE' | 'DISABLE'];
