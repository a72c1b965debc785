#!/usr/bin/env python3
"""Drive the CMPP 2.0 simulator with PyPI pycmpp 2.0.2 (an independent client).

pycmpp's `Cmpp` client connects (Version 0x21), authenticates, submits (one
and a long two-segment message with UDH) and runs its receive loop with its
own handlers. It ships no DELIVER handler, so one is registered through its
handler table (`Cmpp.handlers`, keyed by command id) to decode the status
report and answer DELIVER_RESP.

    sim_serve cmpp2 127.0.0.1:7891 901234:secret 50ms &
    python3 pycmpp_check.py 127.0.0.1 7891
"""
import logging
import struct
import sys
import threading
import time

from pycmpp.cmpp import Cmpp
from pycmpp.cmpp_defines import CMPP_DELIVER_REQ, CMPP_SUBMIT_RESP
from pycmpp.handlers import BaseHandler

logging.basicConfig(level=logging.WARNING)
host, port = sys.argv[1], int(sys.argv[2])

submit_ids = []
reports = {}
done = threading.Event()
EXPECTED = 3  # one short message + two segments


class SubmitResp(BaseHandler):
    command_id = CMPP_SUBMIT_RESP

    def __call__(self):
        body = self.message[12:]
        (msg_id,) = struct.unpack("!Q", body[0:8])
        result = body[8]
        print("SUBMIT_RESP msg_id=%d result=%d (%d bytes)" % (msg_id, result, len(self.message)))
        submit_ids.append(msg_id)


class Deliver(BaseHandler):
    command_id = CMPP_DELIVER_REQ

    def __call__(self):
        m = self.message
        (seq,) = struct.unpack("!L", m[8:12])
        body = m[12:]
        (deliver_id,) = struct.unpack("!Q", body[0:8])
        registered, length = body[63], body[64]
        content = body[65:65 + length]
        if registered == 1:
            (report_id,) = struct.unpack("!Q", content[0:8])
            reports[report_id] = content[8:15].decode()
            print("DELIVER report msg_id=%d stat=%s" % (report_id, reports[report_id]))
        # CMPP 2.0 DELIVER_RESP: Msg_Id 8 + Result 1.
        self.cmpp.send(struct.pack("!LLLQB", 21, 0x80000005, seq, deliver_id, 0))
        if len(submit_ids) >= EXPECTED and len(reports) >= len(submit_ids):
            done.set()


client = Cmpp(host=host, port=port, sp_id="901234", sp_secret="secret", src_id="106900001",
              delivery=1, client_heartbeat=False)
client.handlers[SubmitResp.command_id] = SubmitResp
client.handlers[Deliver.command_id] = Deliver
threading.Thread(target=client.run, daemon=True).start()
time.sleep(0.5)
client.submit("pycmpp 你好", ["13800138000"])
client.submit("长短信" * 40, ["13800138000"])  # 120 chars -> 2 segments with UDH (pycmpp cuts at 64 chars)
if not done.wait(10):
    print("pycmpp: FAILED: %d submit responses, %d reports" % (len(submit_ids), len(reports)))
    sys.exit(1)
assert set(reports) == set(submit_ids)
print("pycmpp: OK (%d submits incl. a 2-segment long message, %d reports correlated)" % (len(submit_ids), len(reports)))
