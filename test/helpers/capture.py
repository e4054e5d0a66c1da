# Prints one JSON line per UDP frame that arrives on IFACE for SECONDS: its VLAN
# tag (from the frame, or from PACKET_AUXDATA when the driver stripped it) and
# UDP destination port. Used by data-plane tests; run inside a netns, as root.
import json, socket, struct, sys, time

iface, seconds = sys.argv[1], float(sys.argv[2])
SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID = 263, 8, 0x10
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((iface, 0))
s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
s.settimeout(0.2)
print(json.dumps({"ready": True}), flush=True)
end = time.time() + seconds
while time.time() < end:
    try:
        data, anc, _, _ = s.recvmsg(65535, socket.CMSG_SPACE(32))
    except socket.timeout:
        continue
    vid = pcp = tpid = None
    for level, typ, cdata in anc:
        if level == SOL_PACKET and typ == PACKET_AUXDATA and len(cdata) >= 20:
            status, _, _, _, _, tci, tp = struct.unpack("IIIHHHH", cdata[:20])
            if status & TP_STATUS_VLAN_VALID:
                vid, pcp, tpid = tci & 0xFFF, tci >> 13, tp or 0x8100
    off, etype = 12, struct.unpack("!H", data[12:14])[0]
    if etype in (0x8100, 0x88A8):  # tag still in the frame
        tci = struct.unpack("!H", data[14:16])[0]
        vid, pcp, tpid = tci & 0xFFF, tci >> 13, etype
        off, etype = 16, struct.unpack("!H", data[16:18])[0]
    if etype != 0x0800 or data[off + 11] != 17:
        continue
    ihl = (data[off + 2] & 0x0F) * 4
    dport = struct.unpack("!H", data[off + 2 + ihl + 2: off + 2 + ihl + 4])[0]
    print(json.dumps({"vid": vid, "pcp": pcp, "tpid": tpid, "dport": dport}), flush=True)
