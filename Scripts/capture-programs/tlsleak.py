#!/usr/bin/env python3
"""The keep-alive leak over TLS, standard library only (ssl).

server: a TLS server (certificate and key from --cert/--key) that answers each line
        with "pong\\n" and closes a connection after --idle seconds without a new line
        (socket timeout -> close, no close_notify), or at once on EOF.
client: opens --count connections, one every --interval seconds, each with the server
        name --sni and the ALPN list --alpn in its ClientHello; sends "ping\\n", reads
        the answer (which also takes in TLS 1.3's session tickets, so no unread data is
        left) and never closes the connection (the leak).  The last connection (SIGUSR1)
        shuts down its sending side, reads to EOF and closes: a client-first close.  Logs one JSON line per
        connection (client and server address:port, the SNI and ALPN it offered, the
        protocol the server selected), creates --done and waits for SIGTERM; SIGUSR1
        makes one more connection, closed properly.

  tlsleak.py server --host 127.0.0.1 --port 8443 --cert C --key K --idle 2
  tlsleak.py client --host 127.0.0.1 --port 8443 --sni api.finscope.test
                    --alpn h2,http/1.1 --count 6 --interval 0.3 --done F --log F
"""
import argparse
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time


def serve_conn(tls, idle):
    try:
        tls.settimeout(idle)
        f = tls.makefile("rb")
        while True:
            try:
                line = f.readline()
            except (socket.timeout, TimeoutError):
                break                       # idle: close
            if not line:
                break                       # EOF: close at once
            tls.sendall(b"pong\n")
    except (OSError, ssl.SSLError):
        pass
    finally:
        try:
            tls.close()
        except OSError:
            pass


def server(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(a.alpn.split(","))
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(64)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print("listening", flush=True)
    while True:
        c, _ = ls.accept()
        try:
            tls = ctx.wrap_socket(c, server_side=True)
        except (OSError, ssl.SSLError):
            c.close()
            continue
        threading.Thread(target=serve_conn, args=(tls, a.idle), daemon=True).start()


def client(a):
    fp = open(a.log, "a") if a.log else sys.stdout
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False              # a self-signed test certificate
    ctx.verify_mode = ssl.CERT_NONE
    alpn = a.alpn.split(",")
    ctx.set_alpn_protocols(alpn)
    kept = []

    def one(good):
        s = socket.create_connection((a.host, a.port), timeout=10)
        tls = ctx.wrap_socket(s, server_hostname=a.sni)
        tls.sendall(b"ping\n")
        answer = tls.recv(100)
        me, srv = tls.getsockname(), tls.getpeername()
        rec = {"side": "client", "event": "conn", "mode": "client-first" if good else "leak",
               "client": [me[0], me[1]], "server": [srv[0], srv[1]],
               "sni": a.sni, "alpn": alpn, "selected": tls.selected_alpn_protocol(),
               "version": tls.version(), "answer": answer.decode(errors="replace"),
               "action": "closed" if good else "leaked", "t": round(time.time(), 6)}
        if good:
            # FIN first, then read what the server still sends (Python's TLS server
            # answers EOF with an encrypted alert before its FIN): closing with it
            # unread would make the kernel send RST
            tls.shutdown(socket.SHUT_WR)
            while tls.recv(4096):
                pass
            tls.close()
        else:
            kept.append(tls)                # the leak: never closed, never collected
        fp.write(json.dumps(rec) + "\n")
        fp.flush()

    for i in range(a.count):
        if i:
            time.sleep(a.interval)
        one(False)
    usr1 = []
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGUSR1, lambda *_: usr1.append(1))
    if a.done:
        open(a.done, "w").close()
    while True:
        time.sleep(0.05)
        if usr1:
            usr1.clear()
            one(True)
            if a.done:
                open(a.done + ".final", "w").close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8443)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--idle", type=float, default=2.0)
    p.add_argument("--sni", default="api.finscope.test")
    p.add_argument("--alpn", default="h2,http/1.1")
    p.add_argument("--count", type=int, default=6)
    p.add_argument("--interval", type=float, default=0.3)
    p.add_argument("--done")
    p.add_argument("--log")
    a = p.parse_args()
    server(a) if a.role == "server" else client(a)


if __name__ == "__main__":
    main()
