#!/usr/bin/env python3
"""Drive the CMPP 3.0 simulator with PyPI cmppy 0.3 (an independent client).

cmppy builds CONNECT / SUBMIT / TERMINATE and parses CONNECT_RESP /
SUBMIT_RESP; it has no DELIVER support (its `delivery` package is empty), so
this script reads the status-report DELIVER itself and answers DELIVER_RESP.

    sim_serve cmpp3 127.0.0.1:7890 901234:secret 50ms &
    python3 cmppy_check.py 127.0.0.1 7890
"""
import socket
import struct
import sys

from cmppy.request import ConnectReq, SubmitReq, TerminateReq
from cmppy.response import parse_response

host, port = sys.argv[1], int(sys.argv[2])
so = socket.create_connection((host, port))


def read_frame():
    head = b""
    while len(head) < 4:
        chunk = so.recv(4 - len(head))
        if not chunk:
            raise EOFError("closed")
        head += chunk
    (length,) = struct.unpack("!L", head)
    body = b""
    while len(body) < length - 4:
        body += so.recv(length - 4 - len(body))
    return head + body


so.sendall(ConnectReq("901234", "secret").message)
r = parse_response(read_frame())
print("CONNECT_RESP status=%d version=0x%02x" % (r.status, r.version))
assert r.status == 0

n = 5
msg_ids = set()
for i in range(n):
    s = SubmitReq(msg_src="901234", msg_content="cmppy 测试 %d" % i, src_id="106900001",
                  dest_terminal_id=["13800138000"], registered_delivery=1, service_id="TEST")
    so.sendall(s.message)

reports = {}
while len(msg_ids) < n or len(reports) < n:
    f = read_frame()
    (cmd,) = struct.unpack("!L", f[4:8])
    if cmd == 0x80000004:
        r = parse_response(f)
        print("SUBMIT_RESP seq=%d msg_id=%d result=%d" % (r.sequence, r.msg_id, r.result))
        assert r.result == 0
        msg_ids.add(r.msg_id)
    elif cmd == 0x00000005:
        body = f[12:]
        (deliver_id,) = struct.unpack("!Q", body[0:8])
        registered = body[75]
        length = body[76]
        content = body[77:77 + length]
        assert registered == 1 and length == 71, (registered, length)
        (report_id,) = struct.unpack("!Q", content[0:8])
        stat = content[8:15].decode()
        reports[report_id] = stat
        print("DELIVER report msg_id=%d stat=%s" % (report_id, stat))
        so.sendall(struct.pack("!LLLQL", 24, 0x80000005, struct.unpack("!L", f[8:12])[0], deliver_id, 0))
    else:
        print("other command 0x%08x" % cmd)

assert set(reports) == msg_ids, "every report matches a SUBMIT_RESP Msg_Id"
so.sendall(TerminateReq().message)
r = parse_response(read_frame())
print("TERMINATE_RESP command=0x%08x" % r.command_id)
print("cmppy: OK (%d submits, %d reports correlated)" % (n, len(reports)))
