#!/usr/bin/env python3
"""tshark's view of a capture's TCP segments, for expected.py and check_expected.py.

Only tshark decodes the file here (never finscope).  Frames whose TCP header sits
inside an ICMP error are not TCP segments and are left out, and so are frames the
snapshot length cut before the end of the TCP header (SPEC section 5: `truncated`, no
segment): the TCP header ends tcp.len bytes before the frame's end, so a frame is cut
there when frame.cap_len < frame.len - tcp.len.
"""
import collections
import subprocess

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

Seg = collections.namedtuple(
    "Seg", "frame t ver src sport dst dport seq ack flags len win cwin")

FIELDS = ["frame.number", "frame.time_epoch", "frame.protocols", "ip.src", "ip.dst",
          "ipv6.src", "ipv6.dst", "tcp.srcport", "tcp.dstport", "tcp.seq_raw",
          "tcp.ack_raw", "tcp.flags", "tcp.len", "tcp.window_size_value", "tcp.window_size",
          "frame.len", "frame.cap_len"]


def read(path):
    """Returns (segments in file order, capture end = latest frame time, frame count)."""
    cmd = ["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=f"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    segs, end, frames = [], None, 0
    for line in out.splitlines():
        v = line.split("\t")
        v += [""] * (len(FIELDS) - len(v))
        frames += 1
        t = float(v[1])
        end = t if end is None else max(end, t)
        protos = v[2].split(":")
        if "tcp" not in protos or "icmp" in protos or "icmpv6" in protos:
            continue
        if v[15] and v[16] and int(v[16]) < int(v[15]) - int(v[12] or 0):
            continue                        # TCP header not captured whole
        if v[3]:
            ver, src, dst = 4, v[3], v[4]
        else:
            ver, src, dst = 6, v[5], v[6]
        segs.append(Seg(int(v[0]), t, ver, src, int(v[7]), dst, int(v[8]), int(v[9]),
                        int(v[10]) if v[10] else 0, int(v[11], 16), int(v[12] or 0),
                        int(v[13] or 0), int(v[14]) if v[14] else None))
    return segs, end, frames


def same_segment(a, b):
    return (a.seq, a.ack, a.flags, a.len, a.win) == (b.seq, b.ack, b.flags, b.len, b.win)


def split(segs):
    """Mechanical flow split (SPEC section 5): unordered 4-tuple + IP version; a SYN
    without ACK with another ISN starts a new flow; capture duplicates (identical to the
    previous segment in the same direction, <= 1 ms later) are set aside.
    Returns (flows, duplicates); each flow is a dict with 'segs' (non-duplicates, file
    order), 'syn_client' (endpoint that sent SYN, or receiver of SYN+ACK), 'isn',
    'ended' (time of the SYN that replaced it, or None)."""
    table, flows, dups = {}, [], 0
    for s in segs:
        a, b = (s.src, s.sport), (s.dst, s.dport)
        key = (s.ver, frozenset((a, b)))
        f = table.get(key)
        syn_only = s.flags & SYN and not s.flags & ACK
        if f is not None and syn_only:
            if not (f["isn"] is not None and f["syn_client"] == a and s.seq == f["isn"]):
                f["ended"] = s.t
                f = None
        if f is None:
            f = {"key": key, "segs": [], "syn_client": None, "isn": None, "ended": None,
                 "last": {}, "dups": 0, "first": s}
            table[key] = f
            flows.append(f)
        prev = f["last"].get(a)
        f["last"][a] = s
        if prev is not None and same_segment(prev, s) and s.t - prev.t <= 0.001:
            dups += 1
            f["dups"] += 1
            continue
        if syn_only and f["syn_client"] is None:
            f["syn_client"], f["isn"] = a, s.seq
        elif s.flags & SYN and s.flags & ACK and f["syn_client"] is None:
            f["syn_client"], f["isn"] = b, (s.ack - 1) & 0xFFFFFFFF
        f["segs"].append(s)
    return flows, dups
