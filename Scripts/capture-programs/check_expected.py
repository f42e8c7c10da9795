#!/usr/bin/env python3
"""Check captures/*.expected.json against tshark's view of each capture.

For every capture it re-derives from tshark's fields (seq/ack numbers, flags, lengths,
times) what SPEC sections 1-5 define: the flows and their endpoints and roles, which
FIN acknowledges which (the close kind, threeWay), RST senders, the endpoint paths, the
findings (close-wait, slow-close, fin-unacked, with activity and endedBy) and the
segment and duplicate counts, and compares them with the expected file.  It is a small
independent reading of the spec in Python, not finscope: disagreements are resolved by
looking at what the kernel really did.

  check_expected.py [captures/NAME.expected.json ...]     (default: all of them)
  check_expected.py --show captures/x.pcap                 (print the derived view)
Exit status 1 when any file disagrees.

Also checked when the expected file states them: "groups" (re-derived from tshark's
findings by the SPEC section 4 rule: kind, endpoint, service, peer, peers, flows) and
each flow's "app" (SPEC section 8) against tshark's HTTP and TLS dissectors, run on the
flow's first client and server payload segments with TCP reassembly OFF
(-o tcp.desegment_tcp_streams:FALSE): finscope reads each segment on its own and never
reassembles, so a field that only reassembly would reveal (a head split over segments)
must be null, and tshark must not see it either.  In a frame the snapshot cut, tshark
reports a header line cut short (Host "12"); a header counts only when its line ends
(CRLF) inside the captured payload.  The
service port is decoded as the expected protocol (-d tcp.port==P,http|tls): recognition
by content is finscope's, tshark is only asked what the bytes say.  A GREASE ALPN name
(RFC 8701) that tshark lists is left out before comparing.
"""
import glob
import ipaddress
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcpsegs  # noqa: E402
from tcpsegs import FIN, SYN, RST, ACK  # noqa: E402

E, FW1, FW2, CG, TW = "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSING", "TIME_WAIT"
CW, LA, CL = "CLOSE_WAIT", "LAST_ACK", "CLOSED"
KINDS = ["client-first", "server-first", "simultaneous", "crossed", "reset",
         "half-closed", "open"]
FINDINGS = ["close-wait", "slow-close", "fin-unacked"]


def ge(a, b):
    """a >= b in 32-bit sequence space."""
    return ((a - b) & 0xFFFFFFFF) < 0x80000000


def canon(ip):
    return str(ipaddress.ip_address(ip))


def analyze_flow(f, cap_end, threshold):
    segs = f["segs"]
    first = f["first"]
    if f["syn_client"] is not None:
        client, roles = f["syn_client"], "handshake"
    else:
        roles = "inferred"
        a, b = (first.src, first.sport), (first.dst, first.dport)
        if a[1] < 1024 and not b[1] < 1024:
            server = a
        elif b[1] < 1024 and not a[1] < 1024:
            server = b
        elif a[1] != b[1]:
            server = a if a[1] < b[1] else b
        else:
            server = b
        client = b if server == a else a
    server = [e for e in f["key"][1] if e != client]
    server = server[0] if server else client
    role = lambda s: "client" if (s.src, s.sport) == client else "server"
    peer = {"client": "server", "server": "client"}

    # first accepted RST: its seq at or behind the receiver's last ack, or at most one
    # window (tshark's scaled window of the receiver's last segment) beyond it
    rst, ignored = None, 0
    for i, s in enumerate(segs):
        if not s.flags & RST:
            continue
        rcv = [o for o in segs[:i] if (o.src, o.sport) == (s.dst, s.dport) and o.flags & ACK
               and not o.flags & RST]
        if rcv and not ge(rcv[-1].ack, s.seq):
            w = rcv[-1].cwin
            if w is None or not ge((rcv[-1].ack + w) & 0xFFFFFFFF, s.seq):
                ignored += 1
                continue
        rst = i
        break
    live = segs if rst is None else segs[:rst]          # nothing changes after it
    by = {"client": [], "server": []}                   # (index, seg) in sending order
    for i, s in enumerate(live):
        by[role(s)].append((i, s))

    fin = {}     # X -> dict(F, first index, transmissions)
    for X in ("client", "server"):
        tx = [(i, s) for i, s in by[X] if s.flags & FIN]
        if tx:
            s0 = tx[0][1]
            F = (s0.seq + s0.len + (1 if s0.flags & SYN else 0)) & 0xFFFFFFFF
            fin[X] = {"F": F, "i": tx[0][0], "seg": s0, "tx": [i for i, _ in tx]}

    def first_ack_of(X, finner):
        """X's first segment acknowledging finner's FIN: (index, seg) or None."""
        if finner not in fin:
            return None
        F = fin[finner]["F"]
        for i, s in by[X]:
            if s.flags & ACK and not s.flags & RST and ge(s.ack, (F + 1) & 0xFFFFFFFF):
                return i, s
        return None

    established = roles == "inferred" or f["syn_client"] is None or any(
        s.flags & ACK and not s.flags & SYN for _, s in by["client"])
    paths, info = {}, {}
    for X in ("client", "server"):
        P = peer[X]
        xa = first_ack_of(X, P)        # X acknowledges P's FIN
        pa = first_ack_of(P, X)        # P acknowledges X's FIN
        info[X] = {"acks_peer_fin": xa, "fin_acked": pa}
        if not established:
            paths[X] = ["SYN_SENT"] if X == "client" else (
                ["SYN_RECEIVED"] if any(s.flags & SYN for _, s in by[X]) else [])
            continue
        path = [E]
        active = X in fin and (xa is None or xa[0] > fin[X]["i"])
        info[X]["active"] = active
        if active:
            path.append(FW1)
            rcv = None
            if P in fin and xa is not None:
                before = [i for i in fin[P]["tx"] if i < xa[0]]
                rcv = before[-1] if before else None
            if rcv is None:
                if pa is not None:
                    path.append(FW2)
            elif pa is None:
                path.append(CG)
            elif pa[0] < rcv:
                path += [FW2, TW]
            elif pa[0] == rcv:
                path.append(TW)
            else:
                path += [CG, TW]
        else:
            if xa is not None:
                path.append(CW)
            if X in fin:
                path.append(LA)
                if pa is not None:
                    path.append(CL)
        paths[X] = path
    if rst is not None:
        for X in paths:
            if not paths[X] or paths[X][-1] != CL:
                paths[X].append(CL)

    reset_by = role(segs[rst]) if rst is not None else None
    three = False
    if "client" in fin and "server" in fin:
        s_acks_c = ge(fin["server"]["seg"].ack, fin["client"]["F"] + 1) and fin["server"]["seg"].flags & ACK
        c_acks_s = ge(fin["client"]["seg"].ack, fin["server"]["F"] + 1) and fin["client"]["seg"].flags & ACK
        if s_acks_c:
            kind, second = "client-first", "server"
        elif c_acks_s:
            kind, second = "server-first", "client"
        else:
            kind, second = ("simultaneous" if paths["client"][2:3] == [CG] and
                            paths["server"][2:3] == [CG] else "crossed"), None
        if second:
            three = info[second]["acks_peer_fin"][0] == fin[second]["i"]
    elif rst is not None:
        kind = "reset"
    elif fin:
        kind = "half-closed"
    else:
        kind = "open"

    end = f["ended"] if f["ended"] is not None else cap_end
    finds = []
    for X in ("client", "server"):
        P = peer[X]
        xa = info[X]["acks_peer_fin"]
        if xa is not None and not info[X].get("active"):
            since_i, since = xa[0], xa[1].t
            if X not in fin and rst is None:
                stop_i, stop_t, ended = None, end, None
            elif X in fin:
                stop_i, stop_t, ended = fin[X]["i"], fin[X]["seg"].t, "fin"
            else:
                stop_i, stop_t = rst, segs[rst].t
                ended = "reset" if role(segs[rst]) == X else "peer-reset"
            if stop_t - since >= threshold - 1e-9:
                after = [s for i, s in by[X] if i > since_i and (stop_i is None or i < stop_i)]
                fd = {"endpoint": X, "kind": "close-wait" if ended is None else "slow-close",
                      "activity": activity(after, by[X]),
                      "since": since, "seconds": round(stop_t - since, 6)}
                if ended:
                    fd["endedBy"] = ended
                finds.append(fd)
        if X in fin and info[X]["fin_acked"] is None and rst is None:
            since = fin[X]["seg"].t
            if end - since >= threshold - 1e-9:
                after = [s for i, s in by[P] if i > fin[X]["i"]]
                finds.append({"endpoint": X, "kind": "fin-unacked",
                              "activity": activity(after, by[P]), "since": since,
                              "seconds": round(end - since, 6)})
    return {"client": {"ip": canon(client[0]), "port": client[1]},
            "server": {"ip": canon(server[0]), "port": server[1]},
            "roles": roles, "close": kind, "threeWay": three, "resetBy": reset_by,
            "paths": paths, "findings": finds, "first": first.frame, "ignoredResets": ignored}


def activity(after, own):
    if not after:
        return "silent"
    # highest sequence end sent so far, for telling keep-alive probes from data
    for s in after:
        if s.len == 0:
            continue
        prior = [o for _, o in own if o.frame < s.frame]
        nxt = max([(o.seq + o.len) & 0xFFFFFFFF for o in prior], default=None)
        if s.len <= 1 and nxt is not None and s.seq == (nxt - 1) & 0xFFFFFFFF:
            continue
        return "data"
    return "ack-only"


def derive(path, threshold):
    segs, end, frames = tcpsegs.read(path)
    flows, dups = tcpsegs.split(segs)
    out = [analyze_flow(f, end, threshold) for f in flows]
    return {"tcpSegments": len(segs), "duplicates": dups, "flows": out, "end": end}


def summarize(flows):
    close = dict.fromkeys(KINDS, 0)
    nf = dict.fromkeys(FINDINGS, 0)
    for f in flows:
        close[f["close"]] += 1
        for x in f["findings"]:
            nf[x["kind"]] += 1
    return {"flows": len(flows), "close": close, "findings": nf}


def compare_flow(exp, got, where, errs):
    for k in ("client", "server", "roles", "close", "threeWay", "resetBy", "ignoredResets"):
        if k in exp and exp[k] != got[k]:
            errs.append("%s: %s expected %r, tshark shows %r" % (where, k, exp[k], got[k]))
    if "paths" in exp:
        for X in ("client", "server"):
            if exp["paths"][X] != got["paths"][X]:
                errs.append("%s: %s path expected %s, tshark shows %s"
                            % (where, X, exp["paths"][X], got["paths"][X]))
    ef = sorted((x["endpoint"], x["kind"]) for x in exp.get("findings", []))
    gf = sorted((x["endpoint"], x["kind"]) for x in got["findings"])
    if ef != gf:
        errs.append("%s: findings expected %s, tshark shows %s" % (where, ef, gf))
    else:
        for x in exp.get("findings", []):
            g = next(y for y in got["findings"]
                     if (y["endpoint"], y["kind"]) == (x["endpoint"], x["kind"]))
            for k in ("activity", "endedBy"):
                if k in x and x[k] != g.get(k):
                    errs.append("%s: %s finding %s expected %r, tshark shows %r"
                                % (where, x["kind"], k, x[k], g.get(k)))


def derive_groups(flows):
    """SPEC section 4, from tshark's findings (independent of expected.py)."""
    table = {}
    for f in flows:
        for x in f["findings"]:
            X = x["endpoint"]
            key = (x["kind"], f[X]["ip"], X, f["server"]["ip"], f["server"]["port"])
            g = table.setdefault(key, [0, set()])
            g[0] += 1
            g[1].add(f["client"]["ip"] if X == "server" else f["server"]["ip"])
    out = {}
    for (kind, ip, X, sip, sport), (n, peers) in table.items():
        if X == "client":
            peer = {"ip": sip, "port": sport}
        elif len(peers) == 1:
            peer = {"ip": next(iter(peers)), "port": None}
        else:
            peer = None
        out[(kind, ip, X, sip, sport)] = {"peer": peer, "peers": len(peers), "flows": n}
    return out


APP_FIELDS = ["frame.number", "ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst",
              "tcp.dstport", "tcp.len", "http.request.method", "http.request.uri", "http.host",
              "http.user_agent", "http.response.code", "tls.handshake.type",
              "tls.handshake.extensions_server_name", "tls.handshake.extensions_alpn_str",
              "tcp.payload"]


def whole_line(v, name, value):
    """tshark's value of header `name`, or None when the captured payload ends inside
    that header's line: tshark reports what a cut frame holds (a Host of '12' from
    'Host: 12' at the snapshot's end); SPEC section 8 says a cut field is null."""
    if not value:
        return None
    raw = bytes.fromhex(v["tcp.payload"].replace(":", ""))
    for line in raw.split(b"\r\n")[1:]:
        if line.lower().startswith(name.lower() + b":"):
            start = raw.find(line)
            return value if raw[start + len(line):start + len(line) + 2] == b"\r\n" else None
        if line == b"":
            break
    return value


def tshark_apps(cap, port, proto):
    """(client ip, client port) -> app as tshark reads it, segment by segment."""
    cmd = ["tshark", "-n", "-r", cap, "-o", "tcp.desegment_tcp_streams:FALSE",
           "-d", "tcp.port==%d,%s" % (port, proto), "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=a", "-E", "aggregator=\x1e", "-Y", "tcp.len > 0"]
    for f in APP_FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    apps = {}
    for line in out.split("\n"):  # not splitlines(): it splits at \x1e too
        if not line:
            continue
        v = dict(zip(APP_FIELDS, line.split("\t") + [""] * len(APP_FIELDS)))
        alpn_all = v["tls.handshake.extensions_alpn_str"].split("\x1e")
        v = {k: x.split("\x1e")[0] for k, x in v.items()}     # first occurrence ...
        v["alpn"] = [x for x in alpn_all if x]                # ... but every ALPN name
        src = (canon(v["ip.src"] or v["ipv6.src"]), int(v["tcp.srcport"]))
        dst = (canon(v["ip.dst"] or v["ipv6.dst"]), int(v["tcp.dstport"]))
        to_server = dst[1] == port
        client = src if to_server else dst
        a = apps.setdefault(client, {"first": None, "status": "unseen", "requests": 0})
        if to_server:
            if v["http.request.method"] and v["http.request.uri"]:
                a["requests"] += 1
            if a["first"] is None:
                a["first"] = v
        elif a["status"] == "unseen":
            a["status"] = int(v["http.response.code"]) if v["http.response.code"] else None
    view = {}
    for client, a in apps.items():
        v = a["first"]
        if v is None:
            view[client] = None
        elif proto == "http" and v["http.request.method"] and v["http.request.uri"]:
            # SPEC section 8 recognises a request from its method, SP and the target's
            # first byte; tshark also takes a frame cut after "PUT " for a request
            uri = v["http.request.uri"]
            view[client] = {"protocol": "http",
                            "request": "%s %s" % (v["http.request.method"], uri.split("?")[0]) if uri else None,
                            "host": whole_line(v, b"Host", v["http.host"]),
                            "userAgent": whole_line(v, b"User-Agent", v["http.user_agent"]),
                            "status": a["status"] if a["status"] != "unseen" else None,
                            "requests": a["requests"]}
        elif proto == "tls" and v["tls.handshake.type"] == "1":
            alpn = [x for x in v["alpn"] if not (len(x) == 2 and x[0] == x[1] and (ord(x[0]) & 0x0f) == 0x0a)]
            view[client] = {"protocol": "tls",
                            "sni": v["tls.handshake.extensions_server_name"] or None,
                            "alpn": alpn or None}
        else:
            view[client] = None
    return view


def check_apps(cap, exp, errs):
    flows = [f for f in exp["flows"] if "app" in f]
    if not flows:
        return
    port = flows[0]["server"]["port"]
    protos = {f["app"]["protocol"] for f in flows if f["app"]} or {"http", "tls"}
    views = {p: tshark_apps(cap, port, p) for p in protos}
    for f in flows:
        c = (f["client"]["ip"], f["client"]["port"])
        where = "flow %s:%d app" % c
        if f["app"] is None:
            for p, view in views.items():
                if view.get(c) is not None:
                    errs.append("%s: expected null, tshark (as %s) shows %s" % (where, p, view[c]))
            continue
        got = views[f["app"]["protocol"]].get(c)
        if got is None:
            errs.append("%s: expected %s, tshark shows nothing" % (where, f["app"]))
            continue
        for k, want in f["app"].items():
            if got.get(k, "missing") != want:
                errs.append("%s.%s expected %r, tshark shows %r" % (where, k, want, got.get(k, "missing")))


def check(expfile):
    exp = json.load(open(expfile))
    cap = os.path.join(os.path.dirname(expfile), exp["capture"])
    got = derive(cap, exp.get("threshold", 5))
    errs = []
    for k in ("tcpSegments", "duplicates"):
        if exp["source"][k] != got[k]:
            errs.append("source.%s expected %d, tshark shows %d" % (k, exp["source"][k], got[k]))
    gs = summarize(got["flows"])
    if exp["summary"] != gs:
        errs.append("summary expected %s, tshark shows %s" % (json.dumps(exp["summary"]),
                                                              json.dumps(gs)))
    if exp.get("allFlows", True):
        if len(exp["flows"]) != len(got["flows"]):
            errs.append("expected %d flows, tshark shows %d" % (len(exp["flows"]), len(got["flows"])))
        for n, (e, g) in enumerate(zip(exp["flows"], got["flows"]), 1):
            compare_flow(e, g, "flow %d" % n, errs)
    else:
        withf = [g for g in got["flows"] if g["findings"]]
        if len(withf) != len(exp["flows"]):
            errs.append("expected %d flows with findings, tshark shows %d"
                        % (len(exp["flows"]), len(withf)))
        for n, (e, g) in enumerate(zip(exp["flows"], withf), 1):
            compare_flow(e, g, "listed flow %d (%s:%d)" % (n, e["client"]["ip"],
                                                           e["client"]["port"]), errs)
    if "groups" in exp:
        want = {(g["kind"], g["endpoint"]["ip"], g["endpoint"]["role"], g["service"]["ip"],
                 g["service"]["port"]): g for g in exp["groups"]}
        have = derive_groups(got["flows"])
        for key in sorted(set(want) | set(have), key=str):
            if key not in have:
                errs.append("group %s: expected, tshark's findings make none" % (key,))
            elif key not in want:
                errs.append("group %s: tshark's findings make it, not expected" % (key,))
            else:
                for k in ("peer", "peers", "flows"):
                    if want[key][k] != have[key][k]:
                        errs.append("group %s %s expected %r, tshark shows %r"
                                    % (key, k, want[key][k], have[key][k]))
    check_apps(cap, exp, errs)
    return exp["capture"], errs, got


def main():
    args = sys.argv[1:]
    if args[:1] == ["--show"]:
        got = derive(args[1], float(args[2]) if len(args) > 2 else 5)
        print(json.dumps({k: v for k, v in got.items()}, indent=1))
        return 0
    here = os.path.dirname(os.path.abspath(__file__))
    files = args or sorted(glob.glob(os.path.join(here, "..", "..", "captures", "*.expected.json")))
    bad = 0
    for fpath in files:
        name, errs, got = check(fpath)
        if errs:
            bad += 1
            print("MISMATCH %s" % name)
            for e in errs[:20]:
                print("  " + e)
            if len(errs) > 20:
                print("  ... %d more" % (len(errs) - 20))
        else:
            print("ok       %s (%d flows, %d segments, %d duplicates)"
                  % (name, len(got["flows"]), got["tcpSegments"], got["duplicates"]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
