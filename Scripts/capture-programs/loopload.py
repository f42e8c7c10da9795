#!/usr/bin/env python3
"""Steady loopback TCP load for Scripts/metrics-cost: a server on 127.0.0.1 that answers one
request per connection and closes it, and a client opening RATE connections a second for
SECONDS; the first LEAK client sockets are kept open (left in CLOSE_WAIT). Prints the server
port on its first line, then runs."""
import socket, sys, threading, time

rate, seconds, leak = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(256)
port = server.getsockname()[1]
print(port, flush=True)
time.sleep(float(sys.argv[4]) if len(sys.argv) > 4 else 0)

def serve():
    while True:
        conn, _ = server.accept()
        conn.recv(64)
        conn.sendall(b"200 OK\n" + b"x" * 1000)
        conn.close()

threading.Thread(target=serve, daemon=True).start()
kept = []
start = time.monotonic()
n = 0
while time.monotonic() - start < seconds:
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"GET /\n")
    while c.recv(4096):
        pass
    if len(kept) < leak:
        kept.append(c)
    else:
        c.close()
    n += 1
    delay = start + n / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
print(n, "connections", file=sys.stderr)
