#!/usr/bin/env python3
"""receiver.py: a callback receiver for the notifier's integration tests (standard library only).

  receiver.py serve --log FILE --port-file FILE [--port N] [--bind ADDR]
      Listens on 127.0.0.1, or ADDR ("::" takes every IPv4 and IPv6 address of the machine:
      the namespace tests use it to see any request that reaches any address) (port N, or a
      free one when 0 or absent; the port chosen is written to --port-file once listening),
      HTTP/1.1 with keep-alive, one thread per connection.
      Every request is appended to --log as one JSON line, written before the answer:
      {"time", "method", "path", "headers" (names in lower case), "body" (text), "status",
      "body_utf8" (whether the body bytes are valid UTF-8), "local" (the address the request
      came to, IPv4 as itself)}. A query string does not change the answer.
      Answers by path:
        /ok                  200
        /fail-once/<key>     500 the first time for that key, then 200
        /status/<code>       that status
        /redirect            302 to /ok
        /gone                410
        /truncated           200 announcing a longer body than it sends, then closes
        /garbage             bytes that are not HTTP (with invalid UTF-8), then closes
                             (logged with status 0)
        /badstatus           a status line "HTTP/1.1 999 <invalid UTF-8>", no body
        /retry-after/<secs>  503 with Retry-After: <secs> the first time for that path, then 200
        /slow                no answer for a long time (the client times out)
        /delay/<ms>/<code>   that status after <ms> milliseconds (logged on arrival)
        /big/<code>/<bytes>  that status with a body of <bytes> bytes
        anything else        404

  receiver.py verify --log FILE --secret whsec_...
      Checks the Standard Webhooks signature of every logged request (an implementation
      independent of the notifier's: hmac, hashlib, base64). Prints a JSON summary
      {"checked", "valid", "invalid", "unsigned"}; exits 0 when at least one request was
      checked and every one was valid, else 1.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_SECONDS = 600
MAX_BODY = 16 * 1024 * 1024


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer has a Content-Length
    lock = threading.Lock()
    seen = set()  # keys of /fail-once and paths of /retry-after already answered once
    log_file = None

    def log_message(self, fmt, *args):  # quiet: the JSON log is the record
        pass

    def first_time(self, key):
        with Receiver.lock:
            if key in Receiver.seen:
                return False
            Receiver.seen.add(key)
            return True

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                chunk = self.rfile.read(size + 2)[:size] if size else b""
                if not size:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += chunk
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(n, MAX_BODY)) if n > 0 else b""

    def decide(self):
        """(status, extra headers) for self.path."""
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts in (["truncated"], ["garbage"], ["badstatus"]):  # see answer_raw
            return {"truncated": 200, "garbage": 0, "badstatus": 999}[parts[0]], {"x-raw": parts[0]}
        if parts == ["ok"]:
            return 200, {}
        if len(parts) == 2 and parts[0] == "fail-once":
            return (500, {}) if self.first_time("fail-once/" + parts[1]) else (200, {})
        if len(parts) == 2 and parts[0] == "status" and parts[1].isdigit():
            return int(parts[1]), {}
        if parts == ["redirect"]:
            return 302, {"Location": "/ok"}
        if parts == ["gone"]:
            return 410, {}
        if len(parts) == 2 and parts[0] == "retry-after" and parts[1].isdigit():
            if self.first_time(self.path):
                return 503, {"Retry-After": parts[1]}
            return 200, {}
        if parts == ["slow"]:
            return None, {}
        if len(parts) == 3 and parts[0] == "delay" and parts[1].isdigit() and parts[2].isdigit():
            return int(parts[2]), {"X-Delay-Ms": parts[1]}  # logged at once, answered later
        if len(parts) == 3 and parts[0] == "big" and parts[1].isdigit() and parts[2].isdigit():
            return int(parts[1]), {"X-Body-Bytes": parts[2]}
        return 404, {}

    def handle_any(self):
        body = self.read_body()
        status, extra = self.decide()
        entry = {
            "time": time.time(),
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", errors="surrogateescape"),
            "status": status,
            "body_utf8": is_utf8(body),
            "local": local_address(self.connection),
        }
        line = json.dumps(entry, ensure_ascii=True) + "\n"
        with Receiver.lock:
            Receiver.log_file.write(line)
            Receiver.log_file.flush()
        if "X-Delay-Ms" in extra:
            time.sleep(int(extra.pop("X-Delay-Ms")) / 1000.0)
        if status is None:
            time.sleep(SLOW_SECONDS)
            self.close_connection = True
            return
        if self.answer_raw(extra.get("x-raw")):
            return
        payload = b'{"received":true}\n' if status < 300 else b""
        if "X-Body-Bytes" in extra:
            payload = b"x" * int(extra.pop("X-Body-Bytes"))
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET = do_PUT = handle_any

    def answer_raw(self, kind):
        """The malformed answers of /truncated, /garbage and /badstatus; False for others."""
        if kind == "truncated":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this")
        elif kind == "garbage":
            self.wfile.write(b"\xff\xfe\x00 this is not HTTP \xc3\r\n\r\n")
        elif kind == "badstatus":
            self.wfile.write(b"HTTP/1.1 999 \xff\xfe\xc3\r\nContent-Length: 0\r\n\r\n")
        else:
            return False
        self.close_connection = True
        return True


def local_address(conn):
    addr = conn.getsockname()[0]
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr


class DualStackServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def is_utf8(data):
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def serve(args):
    Receiver.log_file = open(args.log, "a", encoding="utf-8", errors="surrogateescape")
    if ":" in args.bind:
        server = DualStackServer((args.bind, args.port), Receiver)
    else:
        server = ThreadingHTTPServer((args.bind, args.port), Receiver)
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(tmp, args.port_file)  # the reader never sees a half-written port
    server.serve_forever()


def verify(args):
    secret = args.secret[len("whsec_"):] if args.secret.startswith("whsec_") else args.secret
    key = base64.b64decode(secret)
    summary = {"checked": 0, "valid": 0, "invalid": 0, "unsigned": 0}
    now = time.time()
    with open(args.log, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            r = json.loads(line)
            h = r["headers"]
            if "webhook-signature" not in h:
                summary["unsigned"] += 1
                continue
            summary["checked"] += 1
            body = r["body"].encode("utf-8", errors="surrogateescape")
            msg = h.get("webhook-id", "").encode() + b"." + h.get("webhook-timestamp", "").encode()
            expected = base64.b64encode(hmac.new(key, msg + b"." + body, hashlib.sha256).digest())
            ok = False
            for sig in h["webhook-signature"].split(" "):
                version, _, value = sig.partition(",")
                if version == "v1" and hmac.compare_digest(value.encode(), expected):
                    ok = True
            try:
                ok = ok and abs(now - int(h["webhook-timestamp"])) < 300
            except ValueError:
                ok = False
            summary["valid" if ok else "invalid"] += 1
    print(json.dumps(summary))
    return 0 if summary["checked"] > 0 and summary["invalid"] == 0 else 1


def main():
    p = argparse.ArgumentParser(description="callback receiver for the notifier tests")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--log", required=True)
    s.add_argument("--port-file", required=True)
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--bind", default="127.0.0.1")
    v = sub.add_parser("verify")
    v.add_argument("--log", required=True)
    v.add_argument("--secret", required=True)
    args = p.parse_args()
    return serve(args) if args.cmd == "serve" else verify(args)


if __name__ == "__main__":
    sys.exit(main())
