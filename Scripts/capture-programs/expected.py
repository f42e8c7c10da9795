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
              [--app http --server-log server.jsonl | --app tls | --app none]
  expected.py --add-groups captures/NAME.expected.json ...

Every file with findings also states "groups" (SPEC sections 4 and 6): one per kind, stuck
endpoint (address and role) and service (the server's address:port), derived from the
flows' findings; --add-groups adds them to existing files from their own flows.

--app states each flow's "app" (SPEC section 8): http from the server's log of what it
received on each connection (its first request's head as received, the request count,
the first status it sent), cut where the capture's snapshot cut the first client (and
server) payload segment (captured lengths from tshark's frame.cap_len); tls from the
client's log of the SNI and ALPN it offered; none: "app": null on every flow.
"""
import argparse
import ipaddress
import json
import os
import subprocess
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
    # the client hangs up; the server's handler never closes
    "server-leak":      ("half-closed", False, None, [E, FW1, FW2], [E, CW],
                         [{"endpoint": "server", "kind": "close-wait", "activity": "silent"}]),
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


def groups(flows):
    """SPEC section 4: findings grouped by kind, the stuck endpoint's address and role,
    and the service (the server endpoint's address:port).  peer: for a client endpoint
    the service; for a server endpoint {"ip": client, "port": null} when every flow of
    the group has the same client address, else null.  peers: distinct peer addresses.
    Sorted by flows (descending), kind, endpoint address, service address and port."""
    table = {}
    for fl in flows:
        svc = fl["server"]
        for fd in fl.get("findings", []):
            role = fd["endpoint"]
            me = fl[role]
            key = (fd["kind"], me["ip"], role, svc["ip"], svc["port"])
            g = table.setdefault(key, {"flows": 0, "peers": set()})
            g["flows"] += 1
            g["peers"].add(fl["client"]["ip"] if role == "server" else svc["ip"])
    out = []
    for (kind, ip, role, sip, sport), g in table.items():
        if role == "client":
            peer = {"ip": sip, "port": sport}
        else:
            peer = {"ip": next(iter(g["peers"])), "port": None} if len(g["peers"]) == 1 else None
        out.append({"kind": kind, "endpoint": {"ip": ip, "role": role},
                    "service": {"ip": sip, "port": sport}, "peer": peer,
                    "peers": len(g["peers"]), "flows": g["flows"]})
    out.sort(key=lambda g: (-g["flows"], g["kind"], ipaddress.ip_address(g["endpoint"]["ip"]).packed,
                            ipaddress.ip_address(g["service"]["ip"]).packed, g["service"]["port"]))
    return out


def add_groups(paths):
    for path in paths:
        doc = json.load(open(path))
        if not any(fl.get("findings") for fl in doc["flows"]):
            continue
        doc["groups"] = groups(doc["flows"])
        with open(path, "w") as fp:
            fp.write(dumps(doc) + "\n")


def first_payloads(capture):
    """(client ip, port) -> {"client": captured bytes of the client's first payload
    segment, "clientLen": its payload length, "server": ... the server's}, from tshark."""
    cmd = ["tshark", "-n", "-r", capture, "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=f", "-Y", "tcp.len > 0"]
    for f in ["frame.len", "frame.cap_len", "tcp.len", "ip.src", "ipv6.src", "tcp.srcport",
              "ip.dst", "ipv6.dst", "tcp.dstport"]:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    seen = {}
    for line in out.splitlines():
        v = line.split("\t")
        wire, cap, plen = int(v[0]), int(v[1]), int(v[2])
        src, dst = (canon(v[3] or v[4]), int(v[5])), (canon(v[6] or v[7]), int(v[8]))
        captured = max(0, min(plen, cap - (wire - plen)))
        for me, side in ((src, "client"), (dst, "server")):
            d = seen.setdefault(me, {})
            if side == "client" and "client" not in d:
                d["client"], d["clientLen"] = captured, plen
            if side == "server" and "server" not in d:
                d["server"], d["serverLen"] = captured, plen
    return seen


def http_app(srv, cut):
    """SPEC section 8 for one connection, from the server's log, as far as the snapshot
    kept the first client payload segment (cut["client"] bytes) and the first server one."""
    head = srv["head"].encode("latin-1")
    n = cut.get("client", len(head))
    method, target = srv["requestLine"].split(" ")[:2]
    if n < len(method) + 2:
        return None                         # method, SP and a target byte: not captured
    path = target.split("?")[0]
    path_end = len(method) + 1 + len(path)  # the SP or '?' that ends the path
    app = {"protocol": "http", "request": "%s %s" % (method, path) if path_end < n else None}

    def field(name):
        at = 0
        for line in head.split(b"\r\n"):
            end = at + len(line) + 2
            if at > 0 and line.lower().startswith(name.lower() + b":"):
                return line.split(b":", 1)[1].strip(b" \t").decode("latin-1") if end <= n else None
            if line == b"":
                return None
            at = end
        return None
    app["host"] = field(b"Host")
    app["userAgent"] = field(b"User-Agent")
    app["status"] = srv["status"] if cut.get("server", 12) >= 12 else None   # "HTTP/1.1 201"
    app["requests"] = srv["requests"]
    return app


def main():
    if sys.argv[1:2] == ["--add-groups"]:
        return add_groups(sys.argv[2:])
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
    p.add_argument("--app", choices=["http", "tls", "none"])
    p.add_argument("--server-log", help="httpleak.py server --log output (for --app http)")
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

    srvlog = {}
    if a.app == "http":
        for line in open(a.server_log):
            r = json.loads(line)
            if r.get("event") == "conn-end":
                srvlog[(canon(r["client"][0]), int(r["client"][1]))] = r
    cuts = first_payloads(a.capture) if a.app else {}

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
            leaked_ports.append(("local", c["port"]))
        elif r["mode"] == "server-leak":
            leaked_ports.append(("peer", (c["ip"], c["port"])))
        if a.findings_only and not finds:
            continue
        fl = {"client": c, "server": s, "roles": a.roles, "close": kind,
              "threeWay": three, "resetBy": rby}
        if not a.no_paths:
            fl["paths"] = {"client": cpath, "server": spath}
        fl["findings"] = [dict(f) for f in finds]
        if a.app == "none":
            fl["app"] = None
        elif a.app == "http":
            srv = srvlog.get((c["ip"], c["port"]))
            if srv is None:
                sys.exit("expected.py: the server's log has no connection from %s:%d"
                         % (c["ip"], c["port"]))
            fl["app"] = http_app(srv, cuts.get((c["ip"], c["port"]), {}))
        elif a.app == "tls":
            cut = cuts.get((c["ip"], c["port"]), {})
            if cut.get("client", 0) < cut.get("clientLen", 1):
                sys.exit("expected.py: the snapshot cut a ClientHello; no rule written for that")
            fl["app"] = {"protocol": "tls", "sni": r["sni"], "alpn": r["alpn"]}
        out_flows.append(fl)

    if a.ss:
        # evidence: every leaked client socket must be in CLOSE-WAIT in ss's listing
        listed = set()
        for line in open(a.ss):
            parts = line.split()
            if len(parts) >= 4 and parts[0].isdigit():
                local, remote = parts[2], parts[3]
                rip, rport = remote.rsplit(":", 1)
                if any(side == "peer" for side, _ in leaked_ports):
                    listed.add(("peer", (canon(rip.strip("[]")), int(rport))))
                else:
                    listed.add(("local", int(local.rsplit(":", 1)[1])))
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
    if any(fl["findings"] for fl in out_flows):
        doc["groups"] = groups(out_flows)
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
