#!/usr/bin/env python3
"""Client and server programs that make the Linux TCP stack close connections in a
chosen way.  Standard library only.  Used by Scripts/make-captures.

Protocol: the client sends one line "MODE\n"; the server answers with a 32-byte line
and then both sides behave as MODE says (see MODES below).  Every connection the client
makes is logged as one JSON line (mode, client and server address:port, what the client
did with the socket), which is what the expected files are written from.

  peer.py server --host IP --port P [--log F] [--idle S] [--half S]
  peer.py client --host IP --port P --modes m1,m2,... [--bind-port N] [--bind-host IP] [--gap S]
                 [--delay S] [--slow S] [--wait-file F] [--done F] [--hold] [--log F]
  peer.py mixed  --host IP --port P --count N --threads T --seed S --done F --log F
"""
import argparse
import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time

# mode: what the two programs do after the request/response exchange
MODES = {
    "client-first":   "client closes; server waits 0.3 s after EOF, then closes (4-way)",
    "three-way":      "client closes; server closes at once on EOF (FIN, FIN+ACK, ACK)",
    "server-first":   "server closes; client waits 0.3 s after EOF, then closes (4-way)",
    "server-first-3": "server closes; client closes at once on EOF",
    "slow-close":     "server closes; client stays in CLOSE_WAIT --slow seconds, then closes",
    "half-close":     "client shutdown(SHUT_WR) after its request; server sends data for --half s, then closes",
    "half-close-short": "the same with 0.3 s of data",
    "reset-client":   "client closes with SO_LINGER 0 (RST)",
    "reset-server":   "client sends more data; server closes with it unread (RST)",
    "leak":           "server closes after --idle s without a new request; client never closes",
    "idle":           "nobody closes (open until the capture ends)",
    "sync-close":     "client sends 'go', sleeps --delay, shutdown(SHUT_WR); server shuts down on 'go'",
    "ping":           "client waits for --wait-file, pings 3 times, closes first (4-way)",
    "close-on-file":  "client closes when --wait-file appears; the server never closes",
    "server-leak":    "client closes after the answer; the server reads EOF and never closes",
}

LOCK = threading.Lock()
HELD = []          # sockets deliberately kept open (leaks, idle)


def log(fp, **rec):
    rec["t"] = round(time.time(), 6)
    with LOCK:
        if fp:
            fp.write(json.dumps(rec) + "\n")
            fp.flush()


def recv_line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            break
        buf += b
    return buf.decode(errors="replace").strip()


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            break
        buf += b
    return buf


def drain(s):
    """Read until EOF (or reset); returns bytes read."""
    n = 0
    while True:
        try:
            b = s.recv(4096)
        except (ConnectionResetError, OSError):
            return n
        if not b:
            return n
        n += len(b)


def addr(sa):
    return [sa[0].split("%")[0], sa[1]]


# ---------------------------------------------------------------- server
def serve_conn(c, peer, a, fp):
    try:
        mode = recv_line(c)
        log(fp, side="server", event="accept", mode=mode, client=addr(peer), server=addr(c.getsockname()))
        c.sendall(("OK %-28s\n" % mode[:28]).encode())
        if mode in ("client-first", "ping"):
            if mode == "ping":
                while True:
                    line = recv_line(c)
                    if not line:
                        break
                    c.sendall(b"pong\n")
            else:
                drain(c)
            time.sleep(0.3)
            c.close()
        elif mode == "three-way":
            drain(c)
            c.close()
        elif mode in ("server-first", "server-first-3", "slow-close"):
            time.sleep(0.05)
            c.close()
        elif mode in ("half-close", "half-close-short"):
            drain(c)                       # request line already read; wait for EOF
            end = time.time() + (a.half if mode == "half-close" else 0.3)
            i = 0
            while time.time() < end:
                c.sendall(b"chunk %03d\n" % i)
                i += 1
                time.sleep(0.5)
            c.close()
        elif mode == "reset-client":
            drain(c)
            c.close()
        elif mode == "reset-server":
            time.sleep(0.2)                # client's extra data arrives, stays unread
            c.close()                      # -> RST
        elif mode == "leak":
            c.settimeout(a.idle)
            try:
                line = c.recv(100)
            except socket.timeout:
                line = None
            c.close()                      # idle timeout: server FIN
        elif mode in ("idle", "close-on-file"):
            with LOCK:
                HELD.append(c)
        elif mode == "server-leak":
            drain(c)                       # the client hung up ...
            with LOCK:
                HELD.append(c)             # ... and the handler forgets to close
        elif mode == "sync-close":
            line = recv_line(c)            # "go"
            c.shutdown(socket.SHUT_WR)
            drain(c)
            c.close()
        else:
            c.close()
    except OSError as e:
        log(fp, side="server", event="error", error=str(e))


def server(a):
    fp = open(a.log, "a") if a.log else None
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(512)
    log(fp, side="server", event="listening", host=a.host, port=a.port)
    print("listening", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        c, peer = ls.accept()
        threading.Thread(target=serve_conn, args=(c, peer, a, fp), daemon=True).start()


# ---------------------------------------------------------------- client
def client_conn(a, mode, fp, bind_port=None):
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    if bind_port or a.bind_host:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a.bind_host or ("::" if fam == socket.AF_INET6 else "0.0.0.0"), bind_port or 0))
    s.connect((a.host, a.port))
    me, srv = addr(s.getsockname()), addr(s.getpeername())
    rec = dict(side="client", event="conn", mode=mode, client=me, server=srv)
    action = "closed"
    try:
        s.sendall((mode + "\n").encode())
        if mode in ("half-close", "half-close-short"):
            s.shutdown(socket.SHUT_WR)
        resp = recv_exact(s, 32)
        if mode in ("client-first", "three-way", "server-leak"):
            time.sleep(0.05)
            s.close()
        elif mode == "server-first":
            drain(s)
            time.sleep(0.3)
            s.close()
        elif mode == "server-first-3":
            drain(s)
            s.close()
        elif mode == "slow-close":
            drain(s)
            rec["eof"] = round(time.time(), 6)
            time.sleep(a.slow)
            s.close()
        elif mode in ("half-close", "half-close-short"):
            rec["received"] = drain(s)
            s.close()
        elif mode == "reset-client":
            time.sleep(0.05)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            action = "reset"
        elif mode == "reset-server":
            s.sendall(b"x" * 64 + b"\n")
            drain(s)                       # ends with ECONNRESET
            s.close()
            action = "reset-by-server"
        elif mode in ("leak", "idle"):
            with LOCK:
                HELD.append(s)             # never closed while the capture runs
            action = "leaked" if mode == "leak" else "held-open"
        elif mode == "sync-close":
            s.sendall(b"go\n")
            time.sleep(a.delay)
            rec["shutdown"] = round(time.time(), 6)
            s.shutdown(socket.SHUT_WR)
            drain(s)
            s.close()
        elif mode == "close-on-file":
            if a.connected:
                open(a.connected, "w").close()
            while not os.path.exists(a.wait_file):
                time.sleep(0.05)
            s.close()
        elif mode == "ping":
            if a.connected:                # tell the script the handshake is over
                open(a.connected, "w").close()
            while a.wait_file and not os.path.exists(a.wait_file):
                time.sleep(0.05)
            for _ in range(3):
                s.sendall(b"ping\n")
                recv_line(s)
                time.sleep(0.2)
            time.sleep(0.1)
            s.close()
    except OSError as e:
        rec["error"] = str(e)
    rec["action"] = action
    log(fp, **rec)
    return rec


def hold_or_exit(a, fp=None):
    """Keep the held sockets open until SIGTERM.  SIGUSR1 makes one more, well-behaved
    client-first connection: the capture's last frames then show how long the held
    sockets sat there (a pcap file has no stop time of its own)."""
    usr1 = []
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGUSR1, lambda *_: usr1.append(1))
    if a.done:
        open(a.done, "w").close()
    if a.hold:
        while True:
            time.sleep(0.05)
            if usr1:
                usr1.clear()
                client_conn(a, "client-first", fp)
                if a.done:
                    open(a.done + ".final", "w").close()


def client(a):
    fp = open(a.log, "a") if a.log else None
    for i, mode in enumerate(a.modes.split(",")):
        if i:
            time.sleep(a.gap)
        client_conn(a, mode, fp, a.bind_port)
    hold_or_exit(a, fp)


# ---------------------------------------------------------------- mixed
MIX = [("client-first", 24), ("three-way", 14), ("server-first", 18), ("server-first-3", 12),
       ("half-close-short", 4), ("reset-client", 10), ("reset-server", 8), ("leak", 6), ("idle", 4)]


def mixed(a):
    fp = open(a.log, "a") if a.log else None
    rnd = random.Random(a.seed)
    kinds = [k for k, w in MIX for _ in range(w)]
    plan = [rnd.choice(kinds) for _ in range(a.count)]
    it = iter(enumerate(plan))
    it_lock = threading.Lock()

    def worker():
        while True:
            with it_lock:
                try:
                    i, mode = next(it)
                except StopIteration:
                    return
            try:
                client_conn(a, mode, fp)
            except OSError as e:
                log(fp, side="client", event="error", mode=mode, error=str(e))
            time.sleep(rnd.random() * 0.01)

    ts = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    hold_or_exit(a, fp)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client", "mixed"])
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log")
    p.add_argument("--idle", type=float, default=1.0)
    p.add_argument("--half", type=float, default=7.0)
    p.add_argument("--modes", default="client-first")
    p.add_argument("--bind-port", type=int)
    p.add_argument("--bind-host", help="source address of the client's connections")
    p.add_argument("--gap", type=float, default=0.5)
    p.add_argument("--delay", type=float, default=0.2)
    p.add_argument("--slow", type=float, default=7.0)
    p.add_argument("--wait-file")
    p.add_argument("--connected")
    p.add_argument("--done")
    p.add_argument("--hold", action="store_true")
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    {"server": server, "client": client, "mixed": mixed}[a.role](a)


if __name__ == "__main__":
    main()
