// What the kernel datapath lets OVS's tc offload do, asked of the kernel itself.
// OVS 3.1 offloads a datapath flow that recirculates (ct(table=), goto chain)
// only when the openvswitch module accepted OVS_DP_F_TC_RECIRC_SHARING
// (datapath.c ovs_dp_change refuses it without CONFIG_NET_TC_SKB_EXT), and logs
// the refusal per flow only at debug level; the datapath's user features say it
// once, before any traffic.
import netlink from 'netlink';

const { createGenericNetlink } = netlink;

/** include/uapi/linux/openvswitch.h */
const OVS_DATAPATH_FAMILY = 'ovs_datapath';
const OVS_DATAPATH_VERSION = 2;
const OVS_DP_CMD_GET = 3;
const OVS_DP_ATTR_NAME = 1;
const OVS_DP_ATTR_USER_FEATURES = 5;
export const OVS_DP_F_TC_RECIRC_SHARING = 1 << 2;

export interface DatapathFeatures {
  /** The datapath's OVS_DP_ATTR_USER_FEATURES as OVS negotiated them. */
  userFeatures: number;
  /** tc offload of recirculating flows is possible (OVS_DP_F_TC_RECIRC_SHARING). */
  recircSharing: boolean;
}

/**
 * The user features of kernel datapath `name` (OVS names it `ovs-system`);
 * undefined when the host has no openvswitch module or no such datapath.
 */
export async function datapathFeatures(name = 'ovs-system'): Promise<DatapathFeatures | undefined> {
  let sock: ReturnType<typeof createGenericNetlink> | undefined;
  try {
    sock = createGenericNetlink();
    const [family] = await sock.ctrlRequest(netlink.genl.Commands.GET_FAMILY, { familyName: OVS_DATAPATH_FAMILY });
    const id = family?.familyId;
    if (id === undefined) return undefined;
    // struct ovs_header { int dp_ifindex; } then OVS_DP_ATTR_NAME.
    const nameBytes = Buffer.from(`${name}\0`);
    const attrLen = 4 + nameBytes.length;
    const req = Buffer.alloc(4 + ((attrLen + 3) & ~3));
    req.writeUInt16LE(attrLen, 4);
    req.writeUInt16LE(OVS_DP_ATTR_NAME, 6);
    nameBytes.copy(req, 8);
    const [msgs] = await sock.request(id, OVS_DP_CMD_GET, OVS_DATAPATH_VERSION, req);
    const data = msgs[0]?.data;
    if (!data) return undefined;
    const userFeatures = readU32Attr(data.subarray(4), OVS_DP_ATTR_USER_FEATURES) ?? 0;
    return { userFeatures, recircSharing: (userFeatures & OVS_DP_F_TC_RECIRC_SHARING) !== 0 };
  } catch {
    return undefined;
  } finally {
    sock?.socket.close();
  }
}

function readU32Attr(attrs: Buffer, type: number): number | undefined {
  for (let off = 0; off + 4 <= attrs.length; ) {
    const len = attrs.readUInt16LE(off);
    if (len < 4) return undefined;
    if ((attrs.readUInt16LE(off + 2) & 0x3fff) === type && len >= 8) return attrs.readUInt32LE(off + 4);
    off += (len + 3) & ~3;
  }
  return undefined;
}
