#!/usr/bin/env python3
"""nlrelay.py ROUTE_SOCK GENL_SOCK: puts this host's kernel behind a guest
channel, to prove nlshim faithful. Each unix stream connection gets its own
AF_NETLINK socket; requests are forwarded as they come (one send per message),
and every kernel reply datagram goes back on the stream with nlmsg_pid set to
the requester's port id (the channel contract C1, docs/protocol.md), since the
kernel addressed it to this relay's own port id."""
import os, select, socket, struct, sys, threading

def serve(path, proto):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=relay, args=(conn, proto), daemon=True).start()

def relay(conn, proto):
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto)
    nl.setsockopt(270, 11, 1)  # NETLINK_EXT_ACK: the client asked for it too
    nl.bind((0, 0))
    buf, requester = b'', 0
    try:
        while True:
            r, _, _ = select.select([conn, nl], [], [])
            if conn in r:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while len(buf) >= 16:
                    ln, _, _, _, pid = struct.unpack_from('=IHHII', buf)
                    size = (ln + 3) & ~3
                    if len(buf) < ln:
                        break
                    requester = pid
                    nl.send(buf[:ln])
                    buf = buf[min(size, len(buf)):]
            if nl in r:
                dgram = bytearray(nl.recv(1 << 20))
                at = 0
                while at + 16 <= len(dgram):
                    ln = struct.unpack_from('=I', dgram, at)[0]
                    struct.pack_into('=I', dgram, at + 12, requester)
                    at += (ln + 3) & ~3
                conn.sendall(bytes(dgram))
    finally:
        conn.close()
        nl.close()

if __name__ == '__main__':
    threading.Thread(target=serve, args=(sys.argv[2], 16), daemon=True).start()
    serve(sys.argv[1], 0)
