#!/usr/bin/env python3
"""dockerproxy.py: a Docker Engine API proxy that injects faults (standard library only).

  dockerproxy.py --listen SOCK --upstream SOCK --rules FILE [--log FILE]

Listens on the unix socket SOCK and forwards every request to the engine's socket --upstream,
one connection per request ("Connection: close" both ways, so a client never sends a second
request on a connection whose first one was forwarded). Answers stream through as they come
(the events stream, pulls). Before forwarding, the request is checked against the rules of
--rules, a JSON file read again for every request (a missing file: no rules):

  {"rules": [{"id": "start-once", "method": "POST", "path": "/containers/[^/]+/start$",
              "body": "ct-ok", "times": 1,
              "status": 500, "message": "..."}, ...]}

  method, path, body   the request must match (path and body are regular expressions searched
                       in the path without the /v1.xx prefix and the query, and in the body);
                       absent: anything
  times                how many requests the rule applies to (counted per id); absent: all
  status, message      answer that status with {"message": message} instead of forwarding
  hang                 true: never answer; the request is dropped when the client goes away
  delay_ms             forward, but only after that long
  drop_answer          true: forward, wait for the engine's whole answer, then close the
                       client's connection without a byte of it (the call took effect; the
                       client cannot know)

The first matching rule that applies wins. Every request is logged to --log (if given) as one
JSON line {"method", "path", "rule"} (rule: the id that applied, or null).
"""
import argparse
import json
import os
import re
import select
import socket
import sys
import threading
import time

MAX_HEADER = 64 * 1024

lock = threading.Lock()
counts = {}


def load_rules(path):
    try:
        with open(path) as f:
            return json.load(f).get("rules", [])
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        print("dockerproxy: bad rules file: %s" % e, file=sys.stderr)
        return []


def pick_rule(rules, method, path, body):
    text = body.decode("utf-8", "replace")
    with lock:
        for i, r in enumerate(rules):
            if "method" in r and r["method"] != method:
                continue
            if "path" in r and not re.search(r["path"], path):
                continue
            if "body" in r and not re.search(r["body"], text):
                continue
            rid = r.get("id", str(i))
            if "times" in r and counts.get(rid, 0) >= r["times"]:
                continue
            counts[rid] = counts.get(rid, 0) + 1
            return r
    return None


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > MAX_HEADER:
            return None
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = []
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        if name.strip().lower() in ("connection", "expect"):
            continue
        headers.append(line)
    body = rest
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return method, target, version, headers, body


def api_path(target):
    path = target.split("?", 1)[0]
    return re.sub(r"^/v[0-9.]+", "", path)


def answer(conn, status, message):
    body = json.dumps({"message": message}).encode()
    conn.sendall(
        (
            "HTTP/1.1 %d Injected\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\nConnection: close\r\n\r\n" % (status, len(body))
        ).encode()
        + body
    )


def wait_gone(conn):
    """Blocks until the client closes its side."""
    while True:
        r, _, _ = select.select([conn], [], [], 1.0)
        if r:
            try:
                if not conn.recv(65536):
                    return
            except OSError:
                return


def forward(conn, upstream, method, target, version, headers, body, drop=False):
    """Forwards the request; drop: read the engine's whole answer, send the client none."""
    up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    up.connect(upstream)
    try:
        head = "\r\n".join(["%s %s %s" % (method, target, version)] + headers +
                           ["Connection: close", "", ""])
        up.sendall(head.encode("latin-1") + body)
        if drop:
            while up.recv(65536):
                pass
            return
        socks = [up, conn]
        while True:
            r, _, _ = select.select(socks, [], [])
            if up in r:
                data = up.recv(65536)
                if not data:
                    return
                conn.sendall(data)
            if conn in r:
                data = conn.recv(65536)
                if not data:
                    return  # the client went away: drop the answer
    finally:
        up.close()


def handle(conn, args):
    try:
        req = read_request(conn)
        if not req:
            return
        method, target, version, headers, body = req
        path = api_path(target)
        rule = pick_rule(load_rules(args.rules), method, path, body)
        if args.log:
            with lock, open(args.log, "a") as f:
                f.write(json.dumps({"method": method, "path": path,
                                    "rule": rule.get("id") if rule else None}) + "\n")
        if rule and rule.get("hang"):
            wait_gone(conn)
            return
        if rule and "status" in rule:
            answer(conn, int(rule["status"]), rule.get("message", "injected"))
            return
        if rule and rule.get("drop_answer"):
            forward(conn, args.upstream, method, target, version, headers, body, drop=True)
            return
        if rule and rule.get("delay_ms"):
            time.sleep(rule["delay_ms"] / 1000.0)
        forward(conn, args.upstream, method, target, version, headers, body)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--rules", required=True)
    ap.add_argument("--log")
    args = ap.parse_args()
    if os.path.exists(args.listen):
        os.unlink(args.listen)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(args.listen + ".tmp")
    os.chmod(args.listen + ".tmp", 0o666)
    srv.listen(128)
    os.rename(args.listen + ".tmp", args.listen)  # ready once it exists
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn, args), daemon=True).start()


if __name__ == "__main__":
    main()
