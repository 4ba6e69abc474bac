#!/usr/bin/env python3
"""nsforward.py: a byte forwarder between a TCP address and a Unix socket (standard library only).

A Unix socket is a file: it can be reached from any network namespace that sees the file
system. Two forwarders carry a TCP service of the root namespace into a test's namespace:

  (root ns)  nsforward.py --listen unix:/tmp/x.sock --to tcp:127.0.0.1:5672 --ready F1
  (test ns)  ip netns exec NS nsforward.py --listen tcp:127.0.0.1:5672 --to unix:/tmp/x.sock --ready F2

Every accepted connection gets its own connection to --to, and bytes flow both ways until
either side closes. --ready FILE is written once listening. Runs until killed, or until the
process --parent PID is gone (a test killed outright leaves no forwarder behind).
"""
import argparse
import os
import socket
import sys
import threading
import time


def parse(spec):
    kind, _, rest = spec.partition(":")
    if kind == "unix":
        return socket.AF_UNIX, rest
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return family, (host, int(port))
    raise SystemExit("nsforward.py: expected unix:PATH or tcp:HOST:PORT, not " + spec)


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (dst, src):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(conn, to):
    family, addr = to
    try:
        out = socket.socket(family, socket.SOCK_STREAM)
        out.connect(addr)
    except OSError:
        conn.close()
        return
    a = threading.Thread(target=pump, args=(conn, out), daemon=True)
    b = threading.Thread(target=pump, args=(out, conn), daemon=True)
    a.start()
    b.start()
    a.join()
    b.join()
    conn.close()
    out.close()


def watch_parent(pid):
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass
        time.sleep(0.5)


def main():
    p = argparse.ArgumentParser(description="TCP <-> Unix socket forwarder")
    p.add_argument("--listen", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--ready", required=True)
    p.add_argument("--parent", type=int, default=0)
    args = p.parse_args()
    if args.parent:
        threading.Thread(target=watch_parent, args=(args.parent,), daemon=True).start()
    family, addr = parse(args.listen)
    to = parse(args.to)
    ls = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_UNIX:
        try:
            os.unlink(addr)
        except FileNotFoundError:
            pass
    else:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(addr)
    ls.listen(64)
    with open(args.ready + ".tmp", "w") as f:
        f.write("ready\n")
    os.replace(args.ready + ".tmp", args.ready)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn, to), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
