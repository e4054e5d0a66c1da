# Raw Ethernet test frames for data-plane tests (run inside a netns, as root).
#   send IFACE DST SRC TAGS MARKER COUNT [SIZE [GAP_MS]]  TAGS: "" or "8100:100:3,88a8:20:0" (outer first)
#   capture IFACE SECONDS                          one JSON line per test frame: src, dst, tags, marker
# Test frames carry EtherType 0x88b5 (IEEE 802 local experimental), so nothing
# else on the wire (IPv6 ND, ...) is mistaken for them.
import json, socket, struct, sys, time

ETH_TEST = 0x88B5
SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 263, 8, 0x10, 0x40


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def show(b):
    return ":".join("%02x" % x for x in b)


def send(iface, dst, src, tags, marker, count, size=60, gap_ms=0):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    frame = mac(dst) + mac(src)
    for t in filter(None, tags.split(",")):
        tpid, vid, pcp = t.split(":")
        frame += struct.pack("!HH", int(tpid, 16), (int(pcp) << 13) | int(vid))
    frame += struct.pack("!H", ETH_TEST) + ("vpf:" + marker + ":").encode()
    frame += b"\0" * max(0, int(size) - len(frame))
    gap, t = float(gap_ms) / 1000, time.time()
    for i in range(int(count)):
        if gap:  # paced, so the sender's own queue never drops what we count
            time.sleep(max(0, t + i * gap - time.time()))
        s.send(frame)


def capture(iface, seconds):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((iface, 0))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.settimeout(0.1)
    print(json.dumps({"ready": True}), flush=True)
    end = time.time() + float(seconds)
    while time.time() < end:
        try:
            data, anc, _, addr = s.recvmsg(65535, socket.CMSG_SPACE(32))
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        tags = []
        for level, typ, cdata in anc:
            if level == SOL_PACKET and typ == PACKET_AUXDATA and len(cdata) >= 20:
                status, _, _, _, _, tci, tp = struct.unpack("IIIHHHH", cdata[:20])
                if status & TP_STATUS_VLAN_VALID:
                    tags.append({"tpid": tp if status & TP_STATUS_VLAN_TPID_VALID else 0x8100, "vid": tci & 0xFFF, "pcp": tci >> 13})
        off = 12
        etype = struct.unpack("!H", data[off:off + 2])[0]
        while etype in (0x8100, 0x88A8):
            tci = struct.unpack("!H", data[off + 2:off + 4])[0]
            tags.append({"tpid": etype, "vid": tci & 0xFFF, "pcp": tci >> 13})
            off += 4
            etype = struct.unpack("!H", data[off:off + 2])[0]
        if etype != ETH_TEST:
            continue
        marker = data[off + 2:].split(b":")[1].decode(errors="replace")
        print(json.dumps({"dst": show(data[0:6]), "src": show(data[6:12]), "tags": tags, "marker": marker}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(*sys.argv[2:])
    else:
        capture(*sys.argv[2:])
