// Where vpfd keeps its sockets under the state directory: the daemon creates
// them, vpfctl and the guest tools' shim connect to them (docs/operations.md).
import { join } from 'node:path';

export const adminSocket = (stateDir: string) => join(stateDir, 'vpfd.sock');
/** A VM's NETLINK_ROUTE channel (docs/protocol.md). */
export const vmChannelSocket = (stateDir: string, vm: string) => join(stateDir, 'vms', `${vm}.sock`);
/** A VM's NETLINK_GENERIC (devlink) channel: a socket of its own (docs/protocol.md). */
export const genlChannelSocket = (stateDir: string, vm: string) => join(stateDir, 'vms', `${vm}.genl.sock`);
