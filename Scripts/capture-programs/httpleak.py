#!/usr/bin/env python3
"""The CLOSE_WAIT leak as it happens in production, standard library only.

server: an HTTP/1.1 keep-alive server (http.server) that closes a connection after
        --idle seconds without a new request (socket timeout -> shutdown + close).
        GET answers 200 with "hello\n"; PUT (the heartbeat of Heartbeat.java) reads the
        body and answers 201 Created with a small JSON body.  With --log, one JSON line
        per connection when it ends: the client's address:port, how many requests it
        carried, the first request line, its Host and User-Agent as received, and the
        first status sent (what expected.py states as the flow's "app").
client: opens --count connections, one every --interval seconds, sends one GET on each,
        reads the whole response and, except for every --good-every'th connection, never
        closes the connection (the HTTPConnection objects are kept in a list so nothing
        is garbage-collected).  Logs one JSON line per connection with its local port
        and "leaked" or "closed", then creates --done and waits for SIGTERM.

  httpleak.py server --host 127.0.0.1 --port 8282 --idle 2 [--log F]   (F: one line per connection)
  httpleak.py client --host 127.0.0.1 --port 8282 --count 30 --interval 0.25
                     --good-every 6 --done F --log F
  httpleak.py once --host 127.0.0.1 --port 8282 --log F    (one GET /health, closed)
"""
import argparse
import http.client
import http.server
import json
import os
import signal
import socket
import sys
import threading
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

    def do_PUT(self):
        length = int(self.headers.get("Content-Length", "0"))
        if length:
            self.rfile.read(length)
        body = b'{"ok":true}\n'
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_response(self, code, message=None):
        if self.first_status is None:
            self.first_status = code
        super().send_response(code, message)

    def handle_one_request(self):
        self.raw_requestline = b""          # a timeout leaves the previous one behind
        super().handle_one_request()
        if self.raw_requestline:
            self.requests += 1
            if self.first is None:
                self.first = (self.requestline, self.headers.get("Host"),
                              self.headers.get("User-Agent"))

    def setup(self):
        super().setup()
        self.rfile = HeadRecorder(self.rfile)

    def handle(self):
        self.requests, self.first, self.first_status = 0, None, None
        try:
            super().handle()
        finally:
            if LOG and self.first:
                rec = {"side": "server", "event": "conn-end",
                       "client": [self.client_address[0], self.client_address[1]],
                       "requests": self.requests, "requestLine": self.first[0],
                       "host": self.first[1], "userAgent": self.first[2],
                       "status": self.first_status,
                       # the first request's head exactly as received (latin-1)
                       "head": self.rfile.head.decode("latin-1"), "t": round(time.time(), 6)}
                with LOCK:
                    LOG.write(json.dumps(rec) + "\n")
                    LOG.flush()

    def log_message(self, fmt, *args):
        pass


class HeadRecorder:
    """The connection's reader, keeping a copy of the first request's head (request
    line and header lines up to the blank line) as it was received."""

    def __init__(self, f):
        self.f, self.head, self.done = f, b"", False

    def readline(self, *args):
        line = self.f.readline(*args)
        if not self.done:
            self.head += line
            self.done = line in (b"\r\n", b"\n", b"")
        return line

    def __getattr__(self, name):
        return getattr(self.f, name)


LOG = None
LOCK = threading.Lock()


class Server6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def server(a):
    global LOG
    LOG = open(a.log, "a") if a.log else None
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


def once(a):
    """One GET on a new connection, closed after the response (the last, well-behaved
    connection of a capture), logged like the client's."""
    fp = open(a.log, "a") if a.log else sys.stdout
    conn = http.client.HTTPConnection(a.host, a.port, timeout=10)
    conn.request("GET", "/health")
    resp = conn.getresponse()
    resp.read()
    me, srv = conn.sock.getsockname(), conn.sock.getpeername()
    conn.close()
    fp.write(json.dumps({"side": "client", "event": "conn", "mode": "three-way",
                         "client": [me[0], me[1]], "server": [srv[0], srv[1]],
                         "status": resp.status, "action": "closed",
                         "t": round(time.time(), 6)}) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client", "once"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8282)
    p.add_argument("--idle", type=float, default=2.0)
    p.add_argument("--count", type=int, default=30)
    p.add_argument("--interval", type=float, default=0.25)
    p.add_argument("--good-every", type=int, default=6)
    p.add_argument("--done")
    p.add_argument("--log")
    a = p.parse_args()
    {"server": server, "client": client, "once": once}[a.role](a)


if __name__ == "__main__":
    main()
