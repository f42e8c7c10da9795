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
"""
import glob
import ipaddress
import json
import os
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
