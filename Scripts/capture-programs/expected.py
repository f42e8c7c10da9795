#!/usr/bin/env python3
"""Write captures/NAME.expected.json from what a scenario DID: the client program's log
(one JSON line per connection: mode, client and server address:port, action) and the
mode's intended outcome below (close kind, paths, findings, derived by hand from
SPEC sections 2-4).  tshark is used only for counting (source.tcpSegments,
source.duplicates) and for the order of first appearance of the flows; the verdicts are
checked independently afterwards by check_expected.py.  Never runs finscope.

  expected.py --capture captures/x.pcap --scenario "..." --log client.jsonl
              [--outcome MODE=KIND] [--roles inferred] [--threshold 5]
              [--findings-only] [--no-paths] [--ss x.ss.txt]
"""
import argparse
import ipaddress
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcpsegs  # noqa: E402

E, FW1, FW2, CG, TW = "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSING", "TIME_WAIT"
CW, LA, CL = "CLOSE_WAIT", "LAST_ACK", "CLOSED"

ACTIVE_4 = [E, FW1, FW2, TW]          # FIN, its ACK, then the peer's FIN
ACTIVE_3 = [E, FW1, TW]               # the peer's FIN carried the first ACK
PASSIVE = [E, CW, LA, CL]
BOTH_CLOSING = [E, FW1, CG, TW]

# mode -> (close, threeWay, resetBy, client path, server path, findings)
OUTCOME = {
    "client-first":     ("client-first", False, None, ACTIVE_4, PASSIVE, []),
    "ping":             ("client-first", False, None, ACTIVE_4, PASSIVE, []),
    "three-way":        ("client-first", True, None, ACTIVE_3, PASSIVE, []),
    "server-first":     ("server-first", False, None, PASSIVE, ACTIVE_4, []),
    "server-first-3":   ("server-first", True, None, PASSIVE, ACTIVE_3, []),
    "slow-close":       ("server-first", False, None, PASSIVE, ACTIVE_4,
                         [{"endpoint": "client", "kind": "slow-close", "endedBy": "fin",
                           "activity": "silent"}]),
    "half-close":       ("client-first", False, None, ACTIVE_4, PASSIVE,
                         [{"endpoint": "server", "kind": "slow-close", "endedBy": "fin",
                           "activity": "data"}]),
    "half-close-short": ("client-first", False, None, ACTIVE_4, PASSIVE, []),
    "reset-client":     ("reset", False, "client", [E, CL], [E, CL], []),
    "reset-server":     ("reset", False, "server", [E, CL], [E, CL], []),
    "leak":             ("half-closed", False, None, [E, CW], [E, FW1, FW2],
                         [{"endpoint": "client", "kind": "close-wait", "activity": "silent"}]),
    "idle":             ("open", False, None, [E], [E], []),
    # the client's FIN never reaches the server (dropped after the capture point)
    "fin-unacked":      ("half-closed", False, None, [E, FW1], [E],
                         [{"endpoint": "client", "kind": "fin-unacked", "activity": "silent"}]),
    "simultaneous":     ("simultaneous", False, None, BOTH_CLOSING, BOTH_CLOSING, []),
    # the client's first FIN is lost after the capture point: the client receives the
    # server's FIN first (CLOSING); the server gets the client's ACK of its FIN before
    # the retransmitted FIN (FIN_WAIT_2)
    "crossed":          ("crossed", False, None, BOTH_CLOSING, ACTIVE_4, []),
}

KINDS = ["client-first", "server-first", "simultaneous", "crossed", "reset",
         "half-closed", "open"]
FINDINGS = ["close-wait", "slow-close", "fin-unacked"]


def canon(ip):
    return str(ipaddress.ip_address(ip.split("%")[0]))


def ep(e):
    ip = canon(e[0])
    if ip.startswith("::ffff:"):
        ip = ip[7:]
    return {"ip": ip, "port": int(e[1])}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--capture", required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--log", action="append", required=True)
    p.add_argument("--outcome", action="append", default=[], help="MODE=OUTCOME override")
    p.add_argument("--roles", default="handshake")
    p.add_argument("--threshold", type=float, default=5)
    p.add_argument("--findings-only", action="store_true")
    p.add_argument("--no-paths", action="store_true")
    p.add_argument("--ss", help="ss -tan state close-wait output: must list every leak")
    p.add_argument("--out")
    a = p.parse_args()
    override = dict(o.split("=", 1) for o in a.outcome)

    recs = []
    for path in a.log:
        for line in open(path):
            r = json.loads(line)
            if r.get("side") == "client" and r.get("event") == "conn":
                recs.append(r)

    segs, end, frames = tcpsegs.read(a.capture)
    flows, dups = tcpsegs.split(segs)
    # order of first appearance: the n-th record of a 4-tuple is its n-th flow
    occ = {}
    for i, f in enumerate(flows):
        occ.setdefault(f["key"], []).append(i)
    placed = []
    used = {}
    for r in recs:
        c, s = ep(r["client"]), ep(r["server"])
        ver = 6 if ":" in c["ip"] else 4
        key = (ver, frozenset(((c["ip"], c["port"]), (s["ip"], s["port"]))))
        n = used.get(key, 0)
        used[key] = n + 1
        if key not in occ or n >= len(occ[key]):
            sys.exit("expected.py: %s: connection %s:%d -> %s:%d of the log is not in the "
                     "capture" % (a.capture, c["ip"], c["port"], s["ip"], s["port"]))
        placed.append((occ[key][n], r, c, s))
    if len(placed) != len(flows):
        sys.exit("expected.py: %s: the log has %d connections, the capture %d flows"
                 % (a.capture, len(placed), len(flows)))
    placed.sort(key=lambda x: x[0])

    close = dict.fromkeys(KINDS, 0)
    nfind = dict.fromkeys(FINDINGS, 0)
    out_flows = []
    leaked_ports = []
    for _, r, c, s in placed:
        mode = override.get(r["mode"], r["mode"])
        kind, three, rby, cpath, spath, finds = OUTCOME[mode]
        close[kind] += 1
        for f in finds:
            nfind[f["kind"]] += 1
        if r["mode"] == "leak":
            leaked_ports.append(c["port"])
        if a.findings_only and not finds:
            continue
        fl = {"client": c, "server": s, "roles": a.roles, "close": kind,
              "threeWay": three, "resetBy": rby}
        if not a.no_paths:
            fl["paths"] = {"client": cpath, "server": spath}
        fl["findings"] = [dict(f) for f in finds]
        out_flows.append(fl)

    if a.ss:
        # evidence: every leaked client socket must be in CLOSE-WAIT in ss's listing
        listed = set()
        for line in open(a.ss):
            parts = line.split()
            if len(parts) >= 4 and parts[0].isdigit():
                local = parts[2]
                listed.add(int(local.rsplit(":", 1)[1]))
        missing = [pt for pt in leaked_ports if pt not in listed]
        if missing or len(listed) != len(leaked_ports):
            sys.exit("expected.py: %s: ss lists %d CLOSE-WAIT sockets, the log %d leaks "
                     "(missing %s)" % (a.ss, len(listed), len(leaked_ports), missing))

    doc = {
        "capture": os.path.basename(a.capture),
        "scenario": a.scenario,
        "threshold": a.threshold if a.threshold != int(a.threshold) else int(a.threshold),
        "source": {"tcpSegments": len(segs), "duplicates": dups},
        "summary": {"flows": len(placed), "close": close, "findings": nfind},
        "allFlows": not a.findings_only,
        "flows": out_flows,
    }
    outp = a.out or os.path.splitext(a.capture)[0] + ".expected.json"
    with open(outp, "w") as fp:
        fp.write(dumps(doc) + "\n")


def dumps(v, ind=0):
    """JSON with small objects and arrays kept on one line."""
    flat = json.dumps(v)
    if len(flat) + ind <= 120 or not isinstance(v, (dict, list)) or not v:
        return flat
    pad = " " * (ind + 2)
    if isinstance(v, dict):
        items = ["%s%s: %s" % (pad, json.dumps(k), dumps(x, ind + 2)) for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * ind + "}"
    items = [pad + dumps(x, ind + 2) for x in v]
    return "[\n" + ",\n".join(items) + "\n" + " " * ind + "]"


if __name__ == "__main__":
    main()
