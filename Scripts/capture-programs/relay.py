#!/usr/bin/env python3
"""Userspace wire between two TAP (or TUN) devices, standard library only.

This kernel has no netem qdisc and no 8021q module, so the relay provides what they
would: a one-way delay (frames are forwarded in order, each --delay-ms after it was
read), and a mirror TAP into which every forwarded frame is written with 802.1Q /
802.1ad tags inserted, so that tcpdump on the mirror captures the kernel's own frames
tagged.

  relay.py --a tapc --b taps [--tun] [--delay-ms 200]
           [--mirror tapm --tag 0x8100:100 [--tag ...]]      (outermost tag first)

Devices are created when the relay starts (non-persistent: they vanish when it exits);
the caller moves them into namespaces.  Prints "ready" once they exist.  Runs until
SIGTERM/SIGINT.
"""
import argparse
import collections
import fcntl
import os
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_TAP, IFF_NO_PI = 0x0001, 0x0002, 0x1000


def open_dev(name, tun):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    flags = (IFF_TUN if tun else IFF_TAP) | IFF_NO_PI
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), flags))
    os.set_blocking(fd, False)
    return fd


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--tun", action="store_true")
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--mirror")
    p.add_argument("--tag", action="append", default=[], help="TPID:VID, outermost first")
    a = p.parse_args()

    fa, fb = open_dev(a.a, a.tun), open_dev(a.b, a.tun)
    fm = open_dev(a.mirror, False) if a.mirror else None
    tags = b""
    for t in a.tag:
        tpid, vid = t.split(":")
        tags += struct.pack("!HH", int(tpid, 0), int(vid, 0) & 0x0FFF)
    peer = {fa: fb, fb: fa}
    queue = collections.deque()          # (due, out_fd, frame); constant delay keeps order
    delay = a.delay_ms / 1000.0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    print("ready", flush=True)
    rfds = [fa, fb] + ([fm] if fm is not None else [])
    while not stop:
        timeout = None
        if queue:
            timeout = max(0.0, queue[0][0] - time.monotonic())
        try:
            ready, _, _ = select.select(rfds, [], [], timeout if timeout is not None else 0.5)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in ready:
            while True:
                try:
                    frame = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if fd == fm:
                    continue                 # whatever the kernel sends on the mirror: dropped
                if fm is not None and len(frame) >= 14:
                    try:
                        os.write(fm, frame[:12] + tags + frame[12:])
                    except OSError:
                        pass
                queue.append((now + delay, peer[fd], frame))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, out, frame = queue.popleft()
            try:
                os.write(out, frame)
            except OSError:
                pass


if __name__ == "__main__":
    main()
