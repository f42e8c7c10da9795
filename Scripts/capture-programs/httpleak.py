#!/usr/bin/env python3
"""The CLOSE_WAIT leak as it happens in production, standard library only.

server: an HTTP/1.1 keep-alive server (http.server) that closes a connection after
        --idle seconds without a new request (socket timeout -> shutdown + close).
client: opens --count connections, one every --interval seconds, sends one GET on each,
        reads the whole response and, except for every --good-every'th connection, never
        closes the connection (the HTTPConnection objects are kept in a list so nothing
        is garbage-collected).  Logs one JSON line per connection with its local port
        and "leaked" or "closed", then creates --done and waits for SIGTERM.

  httpleak.py server --host 127.0.0.1 --port 8282 --idle 2 [--log F]
  httpleak.py client --host 127.0.0.1 --port 8282 --count 30 --interval 0.25
                     --good-every 6 --done F --log F
"""
import argparse
import http.client
import http.server
import json
import os
import signal
import socket
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"           # keep-alive
    timeout = 2.0                           # idle timeout, set from --idle

    def do_GET(self):
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


class Server6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def server(a):
    Handler.timeout = a.idle
    cls = Server6 if ":" in a.host else http.server.ThreadingHTTPServer
    srv = cls((a.host, a.port), Handler)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print("listening", flush=True)
    srv.serve_forever()


def client(a):
    fp = open(a.log, "a") if a.log else sys.stdout
    kept = []

    def one(i, good):
        conn = http.client.HTTPConnection(a.host, a.port, timeout=10)
        conn.request("GET", "/item/%d" % i)
        resp = conn.getresponse()
        resp.read()
        me = conn.sock.getsockname()
        srv = conn.sock.getpeername()
        if good:
            conn.close()                    # well-behaved: closes after reading
            action = "closed"
        else:
            kept.append(conn)               # the leak: never closed, never collected
            action = "leaked"
        fp.write(json.dumps({"side": "client", "event": "conn", "i": i,
                             "mode": "three-way" if good else "leak",
                             "client": [me[0], me[1]], "server": [srv[0], srv[1]],
                             "status": resp.status, "action": action,
                             "t": round(time.time(), 6)}) + "\n")
        fp.flush()

    for i in range(a.count):
        if i:
            time.sleep(a.interval)
        one(i, a.good_every and (i % a.good_every == a.good_every // 2))
    # SIGUSR1: one more request on a new connection, closed properly (a health check
    # just before the capture stops: the file's last frames then show how long the
    # leaked sockets sat in CLOSE_WAIT; a pcap file has no stop time of its own)
    usr1 = []
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGUSR1, lambda *_: usr1.append(1))
    if a.done:
        open(a.done, "w").close()
    while True:
        time.sleep(0.05)
        if usr1:
            usr1.clear()
            one(a.count, True)
            if a.done:
                open(a.done + ".final", "w").close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8282)
    p.add_argument("--idle", type=float, default=2.0)
    p.add_argument("--count", type=int, default=30)
    p.add_argument("--interval", type=float, default=0.25)
    p.add_argument("--good-every", type=int, default=6)
    p.add_argument("--done")
    p.add_argument("--log")
    a = p.parse_args()
    server(a) if a.role == "server" else client(a)


if __name__ == "__main__":
    main()
