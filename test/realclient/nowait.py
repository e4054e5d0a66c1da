#!/usr/bin/env python3
"""nowait.py: an rtnetlink client that reads as OVS's lib/netlink-socket.c
does: connect() to the kernel before getsockname (nl_sock_create), then each
request's answers read with MSG_DONTWAIT right after send, EAGAIN taken as
"nothing more" (nl_sock_transact_multiple__, nl_dump_refill). The kernel has
answered inside sendmsg, so nothing is lost that way. Prints one line per
step and per message read, so that a run against the kernel and one through
nlshim compare."""
import os, socket, struct

RTM_NEWLINK, RTM_GETLINK = 16, 18
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3


def getlink(seq, flags, index):
    ifinfo = struct.pack('=BxHiII', socket.AF_UNSPEC, 0, index, 0, 0)
    return struct.pack('=IHHII', 16 + len(ifinfo), RTM_GETLINK, NLM_F_REQUEST | flags, seq, 0) + ifinfo


def describe(msg):
    _, kind, _, seq, _ = struct.unpack_from('=IHHII', msg)
    if kind == NLMSG_ERROR:
        return f'seq {seq} error {struct.unpack_from("=i", msg, 16)[0]}'
    if kind == NLMSG_DONE:
        return f'seq {seq} done'
    if kind == RTM_NEWLINK:
        return f'seq {seq} link {struct.unpack_from("=i", msg, 20)[0]}'
    return f'seq {seq} type {kind}'


def read_now(sock):
    """Every message there without waiting, one line each, then EAGAIN."""
    out = []
    while True:
        try:
            dgram = sock.recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return out + ['EAGAIN']
        at = 0
        while at + 16 <= len(dgram):
            ln = struct.unpack_from('=I', dgram, at)[0]
            out.append(describe(dgram[at:at + ln]))
            at += (ln + 3) & ~3


def step(sock, name, *requests):
    print(f'{name}:', ', '.join([f'sent {sock.send(b"".join(requests))}'] + read_now(sock)))


sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
try:
    sock.connect((0, 0))
    print('connect to the kernel: ok, port id is the tgid:', sock.getsockname()[0] == os.getpid())
except OSError as e:
    print('connect to the kernel:', e)
step(sock, 'get lo', getlink(1, 0, 1))
step(sock, 'get lo with ack', getlink(2, NLM_F_ACK, 1))
step(sock, 'get a missing link', getlink(3, 0, 999))
step(sock, 'dump', getlink(4, NLM_F_DUMP, 0))
step(sock, 'two requests in one send', getlink(5, 0, 1), getlink(6, NLM_F_ACK, 999))
