// The admin API's shapes, shared by the server (in vpfd) and the client (vpfctl).
// HTTP+JSON over `<state-dir>/vpfd.sock`; docs/operations.md lists the routes.
import type { PortMap } from '../../translator/portmap.js';

export interface VmSpec {
  name: string;
  vfs: number;
  ports?: PortMap;
  /** Existing netdevs to attach as bridge ports: vf0=IFNAME (datapath side), rep0=IFNAME (representor backend), uplink=, uplinkrep=. */
  attach?: Record<string, string>;
  /** Host VFs backing the guest's VFs (vDPA over a VF): VF settings go to the host PF `pf`, guest VF n -> host VF vfs[n]. */
  hostPf?: HostPf;
  /**
   * The outer TPID of every tagged frame this VM's VFs and wire carry. With it,
   * filters on that VLAN protocol are offloaded (OpenFlow cannot see a TPID);
   * vpfd audits it from the datapath and traps them again if a frame breaks it.
   */
  outerTpid?: '802.1Q' | '802.1ad';
}

export interface HostPf {
  pf: string;
  vfs: number[];
}

export interface VmInfo {
  name: string;
  bridge: string;
  vfs: number;
  ports: PortMap;
  channel: string;
  rules: number;
  flows: number;
  mode: 'switchdev' | 'legacy';
  /** `failed`: the VM did not come up (its cause in `error`); the others run, and it is retried. */
  state: 'up' | 'failed';
  error?: string;
  /** The declared outer TPID, and why vpfd stopped trusting it (a frame that broke it), if it did. */
  outerTpid?: '802.1Q' | '802.1ad';
  outerTpidBroken?: string;
}

// The rule and explain views are the agent's own values (agent/views.ts); the API carries them as they are.
import type { ExplainReport, RuleView } from '../views.js';
export type { ExplainedFlow, ExplainedRule, ExplainReport, RuleView } from '../views.js';

/** What the admin server needs from the daemon. `Vpfd` implements it. */
export interface AdminBackend {
  addVm(spec: VmSpec): Promise<VmInfo>;
  delVm(name: string): Promise<void>;
  listVms(): VmInfo[];
  vmRules(name: string): Promise<RuleView[]>;
  explain(name: string): Promise<ExplainReport>;
  /** Prometheus text exposition. */
  metrics(): string;
  /** Datapath flows and how many of them the NIC holds (ovs-appctl dpctl/dump-flows). */
  offload(): Promise<OffloadReport>;
}

export interface OffloadReport {
  datapathFlows: number;
  offloaded: number;
  /**
   * Whether OVS can offload flows that recirculate (ct(table=), goto): the
   * kernel datapath's OVS_DP_F_TC_RECIRC_SHARING; undefined where there is no
   * kernel datapath to ask (userspace datapath, no openvswitch module).
   */
  recircSharing?: boolean;
  /** Datapath flows that recirculate and stayed in software. */
  recirculatingInSoftware: number;
  flows: { match: string; packets: number; offloaded: boolean; dp: string }[];
}

export interface ApiError {
  error: string;
  errno?: number;
}
