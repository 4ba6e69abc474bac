#!/usr/bin/env python3
"""profile.py: where the engine's time goes, per container, measured serially.

Expects the private servers of tests/servers.sh (their env file sourced: CT_DOCKER_HOST,
CT_SERVERS_DIR) and the test images (tests/images/build.sh: ct-echo). As root.

    python3 bench/profile.py [--n 20] [--image ct-echo] [--json out.json]

For each way of running one correction, N containers one after another; for each, the wall
time of every Engine API call and the engine's CPU over it. The engine's CPU is that of
dockerd, its containerd, the shims and whatever they run for the engine (runc, the re-execs of
dockerd): all of it lands in a cpuacct cgroup of its own, into which this script moves dockerd
and containerd first (their children are born there; each container's own processes are moved
by runc into the container's cgroup, so the correction's own CPU is not counted). Where there
is no cgroup v1 cpuacct, /proc utime+stime (+ cutime+cstime, the reaped children) of dockerd,
containerd and the live shims is read instead, which misses a shim that exits with its
container (reaped by init).

Ways (each with the starter's HostConfig: limits, CapDrop ALL, no-new-privileges, json-file):
  upload/none      create, PUT archive (/tmp/exercise), start, wait, logs, remove
  bind/none        the same with the file bind-mounted read-only at /tmp/exercise, no upload
  upload/internal  NetworkMode = an internal bridge network created once
  bind/internal    both
  cli/none         `docker run --rm --network none`, the same limits, the file bind-mounted
  cli/internal     `docker run --rm --network <internal>`
  bind/default     NetworkMode "default" (not in the default list: on an engine with its
                   default bridge that is the bridge, with a way out; on one started with
                   --bridge=none, a namespace of the container's own with loopback only)
"""
import argparse
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse

import cpuacct
from cpuacct import children, pid_of

CLK_TCK = os.sysconf("SC_CLK_TCK")
NET = "ct-profile-internal"
CG = "ct-profile-engine"  # the engine's cpuacct group (cpuacct.py)


def log(*a):
    print("profile:", *a, file=sys.stderr, flush=True)


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=300)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(300)
        self.sock.connect(self.path)


class Engine:
    def __init__(self, sock):
        self.conn = UnixHTTP(sock)

    def call(self, method, path, body=None, ctype="application/json"):
        headers = {}
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        if body is not None:
            headers["Content-Type"] = ctype
        self.conn.request(method, "/v1.41" + path, body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status >= 400:
            raise RuntimeError("%s %s: %d %s" % (method, path, r.status, data[:300]))
        return r.status, data


# ------------------------------------------------------------------------------ engine CPU

def proc_ticks(pid, reaped=True):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    t = int(st[11]) + int(st[12])
    if reaped:
        t += int(st[13]) + int(st[14])
    return t


def shims():
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    if b"containerd-shim" in f.read().split(b"\0")[0]:
                        out.append(int(p))
            except OSError:
                pass
    return out


class EngineCPU:
    """The engine's CPU time in seconds, as a counter."""

    def __init__(self, dockerd):
        self.dockerd = dockerd
        self.containerd = [c for c in children(dockerd)]
        self.cgroup = None
        try:
            path = cpuacct.make(CG)
            for pid in [dockerd] + self.containerd:
                cpuacct.join(path, pid)
            self.cgroup = path
        except OSError as e:
            log("no cpuacct cgroup (%s): /proc counters instead" % e)

    def how(self):
        return "cpuacct cgroup" if self.cgroup else "/proc utime+stime"

    def now(self):
        if self.cgroup:
            return cpuacct.usage_s(self.cgroup)
        t = proc_ticks(self.dockerd) + sum(proc_ticks(c) for c in self.containerd)
        t += sum(proc_ticks(s, reaped=False) for s in shims())
        return t / CLK_TCK

    def release(self):
        """Moves the engine back to the root cgroup (the folder is then removed)."""
        if not self.cgroup:
            return
        try:
            cpuacct.release(self.cgroup)
        except OSError:
            pass


# ------------------------------------------------------------------------------ one container

def host_config(network, mount_src):
    hc = {
        "NetworkMode": network, "Memory": 512 << 20, "MemorySwap": 512 << 20,
        "NanoCpus": 1000000000, "PidsLimit": 256, "CapDrop": ["ALL"], "CapAdd": [],
        "SecurityOpt": ["no-new-privileges"],
        "LogConfig": {"Type": "json-file", "Config": {"max-size": "4m", "max-file": "2"}},
        "AutoRemove": False,
        "Ulimits": [{"Name": "fsize", "Soft": 64 << 20, "Hard": 64 << 20},
                    {"Name": "nofile", "Soft": 1024, "Hard": 1024}],
    }
    if mount_src:
        hc["Mounts"] = [{"Type": "bind", "Source": mount_src, "Target": "/tmp/exercise",
                         "ReadOnly": True}]
    return hc


def tar_of(data):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        ti = tarfile.TarInfo("tmp/exercise")
        ti.size, ti.mode = len(data), 0o644
        t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def one_api(eng, cpu, image, network, mode, path, tar, i):
    steps = []  # (name, wall s, engine cpu s)

    def step(name, fn):
        c0, t0 = cpu.now(), time.monotonic()
        r = fn()
        steps.append((name, time.monotonic() - t0, cpu.now() - c0))
        return r

    body = {"Image": image, "Labels": {"ct-bench": "profile"}, "AttachStdin": False,
            "OpenStdin": False, "Tty": False,
            "HostConfig": host_config(network, path if mode == "bind" else None)}
    name = "ct-profile-%d-%d" % (os.getpid(), i)
    _, data = step("create", lambda: eng.call("POST", "/containers/create?name=" + name, body))
    cid = json.loads(data)["Id"]
    if mode == "upload":
        step("upload", lambda: eng.call("PUT", "/containers/%s/archive?path=/" % cid, tar,
                                        "application/x-tar"))
    step("start", lambda: eng.call("POST", "/containers/%s/start" % cid))
    _, data = step("wait", lambda: eng.call("POST", "/containers/%s/wait" % cid))
    code = json.loads(data).get("StatusCode")
    _, out = step("logs", lambda: eng.call("GET", "/containers/%s/logs?stdout=1" % cid))
    step("remove", lambda: eng.call("DELETE", "/containers/%s?v=1&force=1" % cid))
    if code != 0 or b"PROFILE-MARK" not in out:
        raise RuntimeError("container %s: exit %s, output %r" % (cid, code, out[:200]))
    return steps


def one_cli(cpu, image, network, path, i):
    args = ["docker", "run", "--rm", "--network", network, "--memory", "512m",
            "--memory-swap", "512m", "--cpus", "1", "--pids-limit", "256", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--log-driver", "json-file",
            "--log-opt", "max-size=4m", "--log-opt", "max-file=2",
            "--ulimit", "fsize=%d" % (64 << 20), "--ulimit", "nofile=1024",
            "--label", "ct-bench=profile",
            "--mount", "type=bind,source=%s,target=/tmp/exercise,readonly" % path, image]
    c0, t0 = cpu.now(), time.monotonic()
    r = subprocess.run(args, capture_output=True, timeout=300)
    wall, c = time.monotonic() - t0, cpu.now() - c0
    if r.returncode != 0 or b"PROFILE-MARK" not in r.stdout:
        raise RuntimeError("docker run: %d %r" % (r.returncode, r.stderr[:300]))
    return [("run", wall, c)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20, help="containers per way")
    ap.add_argument("--image", default="ct-echo")
    ap.add_argument("--ways", default="upload/none,bind/none,upload/internal,bind/internal,"
                    "cli/none,cli/internal")
    ap.add_argument("--json", help="write the figures here too")
    a = ap.parse_args()

    host = os.environ.get("CT_DOCKER_HOST") or os.environ.get("DOCKER_HOST", "")
    if not host.startswith("unix://"):
        sys.exit("profile: CT_DOCKER_HOST (unix://...) is not set: source the servers' env")
    sock = host[len("unix://"):]
    os.environ["DOCKER_HOST"] = host
    sd = os.environ.get("CT_SERVERS_DIR")
    if not sd:
        sys.exit("profile: CT_SERVERS_DIR is not set")
    dockerd = pid_of(os.path.join(sd, "docker", "docker.pid"))
    eng = Engine(sock)
    cpu = EngineCPU(dockerd)
    log("engine CPU from", cpu.how())

    ways = a.ways.split(",")
    net_ok, net_err = True, ""
    if any(w.endswith("/internal") for w in ways):
        try:
            eng.call("DELETE", "/networks/" + NET)
        except RuntimeError:
            pass
        try:
            eng.call("POST", "/networks/create", {
                "Name": NET, "Driver": "bridge", "Internal": True, "CheckDuplicate": True,
                "Options": {"com.docker.network.bridge.enable_icc": "false"}})
        except RuntimeError as e:
            net_ok, net_err = False, str(e)
            log("cannot create the internal network:", e)

    tmp = tempfile.mkdtemp(prefix="ct-profile.")
    path = os.path.join(tmp, "exercise")
    data = b"PROFILE-MARK\n"
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o755)
    os.chmod(path, 0o644)
    tar = tar_of(data)

    results = {"n": a.n, "load_before": os.getloadavg()[0], "image": a.image, "cpu_source": cpu.how(), "ways": {},
               "internal_network": {"ok": net_ok, "error": net_err}}
    # Round-robin: one container of each way per round, so that a busy machine weighs on all
    # ways alike; round 0 (caches warm, the image's layers mounted once) is not counted.
    live = [w for w in ways if not (w.endswith("/internal") and not net_ok)]
    for w in ways:
        if w not in live:
            results["ways"][w] = {"error": net_err}
    runs = {w: [] for w in live}
    try:
        for i in range(a.n + 1):
            for way in list(live):
                mode, net = way.split("/")
                network = NET if net == "internal" else net  # none, default
                try:
                    s = (one_cli(cpu, a.image, network, path, i) if mode == "cli" else
                         one_api(eng, cpu, a.image, network, mode, path, tar, i))
                except RuntimeError as e:
                    log(way, "failed:", e)
                    results["ways"][way] = {"error": str(e)}
                    live.remove(way)
                    continue
                if i:
                    runs[way].append(s)
        for way in live:
            rs = runs[way]
            names = [n for n, _, _ in rs[0]]
            per = {n: {"wall_ms": statistics.median(r[k][1] for r in rs) * 1000,
                       "cpu_ms": statistics.median(r[k][2] for r in rs) * 1000}
                   for k, n in enumerate(names)}
            tot_wall = [sum(x[1] for x in r) * 1000 for r in rs]
            tot_cpu = [sum(x[2] for x in r) * 1000 for r in rs]
            results["ways"][way] = {"steps": per, "wall_ms": statistics.median(tot_wall),
                                    "cpu_ms": statistics.median(tot_cpu),
                                    "cpu_ms_range": [min(tot_cpu), max(tot_cpu)]}
            log("%-16s wall %6.0f ms  engine cpu %6.0f ms  %s" % (
                way, statistics.median(tot_wall), statistics.median(tot_cpu),
                " ".join("%s=%.0f/%.0f" % (n, per[n]["wall_ms"], per[n]["cpu_ms"])
                         for n in names)))
    finally:
        if net_ok and any(w.endswith("/internal") for w in ways):
            try:
                eng.call("DELETE", "/networks/" + NET)
            except RuntimeError:
                pass
        cpu.release()
        os.unlink(path)
        os.rmdir(tmp)
    results["load_after"] = os.getloadavg()[0]
    results["ways"] = {w: results["ways"][w] for w in ways if w in results["ways"]}
    print(table(results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


def table(r):
    steps = ["create", "upload", "start", "wait", "logs", "remove", "run"]
    lines = ["| way | wall ms | engine CPU ms | " +
             " | ".join("%s ms (wall/CPU)" % s for s in steps) + " |",
             "|---|---|---|" + "---|" * len(steps)]
    for way, w in r["ways"].items():
        if "error" in w:
            lines.append("| %s | failed: %s |" % (way, w["error"][:120].replace("|", "/")))
            continue
        cells = []
        for s in steps:
            x = w["steps"].get(s)
            cells.append("%.0f / %.0f" % (x["wall_ms"], x["cpu_ms"]) if x else "")
        lines.append("| %s | %.0f | %.0f (%.0f–%.0f) | %s |" % (
            way, w["wall_ms"], w["cpu_ms"], w["cpu_ms_range"][0], w["cpu_ms_range"][1],
            " | ".join(cells)))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
