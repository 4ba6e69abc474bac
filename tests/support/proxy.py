#!/usr/bin/env python3
"""proxy.py: a recording HTTP forward proxy for the notifier's tests (standard library only).

  proxy.py --log FILE --port-file FILE [--port N]

Listens on 127.0.0.1 (port N, or a free one; written to --port-file once listening). Every
connection is logged to --log as one JSON line when it is accepted: {"time", "event":
"connection"}, and every request on it: {"time", "event": "request", "method", "target"}.
A request in absolute form (POST http://host:port/path HTTP/1.1, what a client sends to a
proxy) is forwarded to host:port as an origin-form request with the same headers and body
(Connection: close), and the answer is relayed; anything else (CONNECT included) is answered
502. One request per connection.
"""
import argparse
import json
import os
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

lock = threading.Lock()
log_file = None


def record(entry):
    entry["time"] = time.time()
    with lock:
        log_file.write(json.dumps(entry) + "\n")
        log_file.flush()


def read_head(f):
    lines = []
    while True:
        line = f.readline(65537)
        if not line or line in (b"\r\n", b"\n"):
            return lines
        lines.append(line.rstrip(b"\r\n"))


def handle(conn):
    record({"event": "connection"})
    f = conn.makefile("rb")
    try:
        head = read_head(f)
        if not head:
            return
        method, target, _ = head[0].decode("latin-1").split(" ", 2)
        record({"event": "request", "method": method, "target": target})
        headers = [h for h in head[1:] if not h.lower().startswith((b"proxy-", b"connection:"))]
        length = 0
        for h in headers:
            if h.lower().startswith(b"content-length:"):
                length = int(h.split(b":", 1)[1])
        body = f.read(length) if length else b""
        url = urlsplit(target)
        if method == "CONNECT" or url.scheme != "http" or not url.hostname:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        up = socket.create_connection((url.hostname, url.port or 80), timeout=30)
        req = ("%s %s HTTP/1.1\r\n" % (method, path)).encode("latin-1")
        req += b"".join(h + b"\r\n" for h in headers) + b"Connection: close\r\n\r\n" + body
        up.sendall(req)
        while True:
            data = up.recv(65536)
            if not data:
                break
            conn.sendall(data)
        up.close()
    except (OSError, ValueError):
        pass
    finally:
        conn.close()


def main():
    global log_file
    p = argparse.ArgumentParser(description="recording HTTP forward proxy")
    p.add_argument("--log", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    log_file = open(args.log, "a")
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(64)
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.replace(args.port_file + ".tmp", args.port_file)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
