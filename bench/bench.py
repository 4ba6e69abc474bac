#!/usr/bin/env python3
"""bench.py: the four benchmarks of correctomatic (see docs/BENCHMARKS.md), run by bench/run.sh.

Expects the private servers of tests/servers.sh (their env file sourced: CT_DOCKER_HOST,
CT_RABBITMQ_PORT, CT_RABBITMQ_MGMT_PORT, CT_TMP) and the binaries in --bin. Writes
docs/BENCHMARKS.md, docs/bench-*.png and the raw figures (bench-results.json) under --out.
"""
import argparse
import base64
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

import cpuacct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ servers

def mgmt(method, path, body=None):
    url = "http://127.0.0.1:%s/api%s" % (os.environ["CT_RABBITMQ_MGMT_PORT"], path)
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None)
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            data = r.read()
            return json.loads(data) if data else None
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


QUEUES = ["pending_corrections", "running_corrections", "finished_corrections",
          "pending_corrections.invalid", "failed_callbacks"]


def purge_queues():
    for q in QUEUES:
        mgmt("DELETE", "/queues/%2F/" + q + "/contents")


def queue_stats(q):
    return mgmt("GET", "/queues/%2F/" + q) or {}


def docker(*args, timeout=300):
    return subprocess.run(["docker", *args], check=False, capture_output=True, text=True,
                          timeout=timeout).stdout


def remove_containers():
    docker("container", "prune", "-f", "--filter", "label=correctomatic.job_id")
    docker("container", "prune", "-f", "--filter", "label=ct-bench")
    ids = docker("ps", "-aq", "--filter", "label=correctomatic.job_id").split()
    if ids:
        docker("rm", "-f", *ids)


# ------------------------------------------------------------------------------ processes

def proc_mem(pid):
    """VmRSS, VmHWM, RssAnon in KiB and Pss (KiB) of a live process."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    out["Pss"] = int(line.split()[1])
    except OSError:
        pass
    return out


def machine_busy_s():
    """CPU seconds the whole machine spent busy so far, every core together (/proc/stat: user,
    nice, system, irq, softirq; not idle, iowait or steal, the time a hypervisor took)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:8]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK


CPU_SPLIT = {}  # name -> cpuacct group folder, with --cpu-split (CpuSplit)


class CpuSplit:
    """--cpu-split: the machine's CPU over each batch of modes/original split by who used it,
    through cgroup v1 cpuacct groups of the benchmark's own (bench/cpuacct.py): the engine
    (dockerd, its containerd and everything they start: shims, runc, dockerd's re-execs), the
    broker (the RabbitMQ node and its helpers), ours (the three daemons), the client
    (ct-bench-load, ct-bench-baseline or the docker CLI), the bench (this script: its samplers of
    the daemons' memory); the corrections are the engine's own group (docker/). What is left
    (the kernel's own threads: writeback, the file systems' journals, network softirqs) is the
    machine's busy time minus these."""

    def __init__(self):
        if not cpuacct.available():
            raise SystemExit("bench: --cpu-split needs cgroup v1's cpuacct controller at "
                             + cpuacct.ROOT)
        sdir = os.environ["CT_SERVERS_DIR"]
        dockerd = cpuacct.pid_of(os.path.join(sdir, "docker", "docker.pid"))
        beam = cpuacct.pid_of(os.path.join(sdir, "rabbitmq", "rabbitmq.pid"))
        self.made = []
        for name, root in (("engine", dockerd), ("broker", beam), ("ours", None),
                           ("client", None), ("bench", os.getpid())):
            path = cpuacct.make("ct-bench-" + name)
            self.made.append(path)
            for pid in cpuacct.tree(root) if root else []:
                cpuacct.join(path, pid)
            CPU_SPLIT[name] = path
        if os.path.isdir(os.path.join(cpuacct.ROOT, "docker")):
            CPU_SPLIT["containers"] = os.path.join(cpuacct.ROOT, "docker")

    def release(self):
        """Every process back in the root group; the groups removed."""
        for path in self.made:
            try:
                cpuacct.release(path)
            except OSError as e:
                log("cpu split: cannot remove %s: %s" % (path, e))
        CPU_SPLIT.clear()


def join_client_group():
    """In a child before its exec (preexec_fn): itself into the --cpu-split client group."""
    if "client" in CPU_SPLIT:
        cpuacct.join(CPU_SPLIT["client"], os.getpid())


def cpu_now():
    """{"machine": s, group: s, ...}: CPU seconds so far (machine_busy_s, CPU_SPLIT's groups)."""
    out = {"machine": machine_busy_s()}
    for name, path in CPU_SPLIT.items():
        out[name] = cpuacct.usage_s(path)
    return out


def cpu_per_job(t0, jobs):
    """ms per job of each counter of cpu_now() since t0"""
    t1 = cpu_now()
    out = {k: (t1[k] - t0[k]) * 1000.0 / jobs for k in t0}
    if len(out) > 1:
        out["rest"] = out["machine"] - sum(v for k, v in out.items() if k != "machine")
    return out


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read().rsplit(")", 1)[1].split()
    return (int(st[11]) + int(st[12])) / CLK_TCK  # utime + stime


class Daemon:
    """One correctomatic daemon, its resident memory sampled every 50 ms (sample=False: not
    sampled; the kernel's own peak, VmHWM, is still there to read)."""

    def __init__(self, bindir, name, logdir, env, sample=True):
        self.name = name
        self.health = os.path.join(logdir, name + ".health")
        if os.path.exists(self.health):
            os.unlink(self.health)
        full = dict(os.environ)
        full.update({"RABBITMQ_HOST": "127.0.0.1", "RABBITMQ_PORT": os.environ["CT_RABBITMQ_PORT"],
                     "DOCKER_HOST": os.environ["CT_DOCKER_HOST"], "HEALTH_FILE": self.health,
                     "LOG_LEVEL": "info"})
        if name == "starter":
            full["EXERCISE_DIR"] = os.environ["CT_TMP"]  # where the bench writes its file
        full.update(env)
        self.log = open(os.path.join(logdir, name + ".log"), "a")
        self.p = subprocess.Popen([os.path.join(bindir, "correctomatic-" + name)], env=full,
                                  stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        if "ours" in CPU_SPLIT:
            cpuacct.join(CPU_SPLIT["ours"], self.p.pid)
        self.peak = {}
        self.stop_sampling = threading.Event()
        if sample:
            self.sampler = threading.Thread(target=self._sample, daemon=True)
            self.sampler.start()

    def _sample(self):
        while not self.stop_sampling.is_set():
            try:
                m = proc_mem(self.p.pid)
            except (OSError, ValueError):
                return
            for k, v in m.items():
                if v > self.peak.get(k, 0):
                    self.peak[k] = v
            self.stop_sampling.wait(0.05)

    def reset_peak(self):
        self.peak = {}

    def wait_ready(self, timeout=30):
        t = time.time() + timeout
        while not os.path.exists(self.health):
            if self.p.poll() is not None:
                raise RuntimeError("%s exited (%s)" % (self.name, self.p.returncode))
            if time.time() > t:
                raise RuntimeError("%s not connected after %ss" % (self.name, timeout))
            time.sleep(0.02)

    def mem(self):
        return proc_mem(self.p.pid)

    def hwm(self):
        """VmHWM, the kernel's peak of VmRSS (KiB), 0 once the process is gone"""
        try:
            return proc_mem(self.p.pid).get("VmHWM", 0)
        except (OSError, ValueError):
            return 0

    def cpu(self):
        return proc_cpu(self.p.pid)

    def stop(self):
        self.stop_sampling.set()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


class Pipeline:
    def __init__(self, bench, names=("starter", "completer", "notifier"), per_daemon=None,
                 sample=True, **env):
        env = {k: str(v) for k, v in env.items()}
        self.bench = bench
        self.d = {n: Daemon(bench.bin, n, bench.logdir, dict(env, **(per_daemon or {}).get(n, {})),
                            sample) for n in names}
        for d in self.d.values():
            d.wait_ready()
        time.sleep(0.3)  # first container count, consumers registered
        bench.pl = self

    def __getitem__(self, name):
        return self.d[name]

    def cpu(self):
        return {n: d.cpu() for n, d in self.d.items()}

    def stop(self):
        for d in self.d.values():
            d.stop()
        if self.bench.pl is self:
            self.bench.pl = None


# ------------------------------------------------------------------------------ the original

ORIGINAL_REPO = "https://github.com/correctomatic/correction-runner"
ORIGINAL_PROCS = ("correction_starter", "correction_completer", "correction_notifier")
# Docker's default capability set (what a container gets without CapDrop), for our starter's
# CORRECTION_CAP_ADD when it imitates the original's containers
DOCKER_DEFAULT_CAPS = ("CHOWN,DAC_OVERRIDE,FSETID,FOWNER,MKNOD,NET_RAW,SETGID,SETUID,SETFCAP,"
                       "SETPCAP,NET_BIND_SERVICE,SYS_CHROOT,KILL,AUDIT_WRITE")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def remove_original_containers():
    """The original names its containers correction-<uuid> and labels none (private engine)."""
    ids = docker("ps", "-aq", "--filter", "name=^/correction-").split()
    if ids:
        docker("rm", "-f", *ids)


def check_successes(res, who):
    """A callback reporting a failed correction is not a job done: a way whose jobs failed
    (a setting the engine refused, say) is an error, not a figure."""
    if res.get("successes", res["jobs"]) < res["jobs"]:
        raise RuntimeError("%s: %d of %d callbacks report a failed correction (see the logs)" % (
            who, res["jobs"] - res["successes"], res["jobs"]))


class Original:
    """The original correctomatic (correctomatic/correction-runner, Node, BullMQ on Redis) run
    from a copy of a checkout: its npm dependencies installed in the copy (`npm install
    --omit=dev`, from its package.json and yarn.lock), a private redis-server on 127.0.0.1 and a
    free port, and its three processes against our private Docker engine. Nothing of it is in
    our repository; bench/original/submit.cjs (ours) submits the jobs with its bullmq."""

    def __init__(self, bench, src):
        self.bench = bench
        self.src = os.path.abspath(src)
        self.dir = os.path.join(os.path.abspath(bench.a.out), "original")
        self.app = os.path.join(self.dir, "app")
        self.redis = None
        self.procs = []
        self.info = {"checkout": self.src}

    # setup ------------------------------------------------------------------------------------
    def prepare(self):
        for tool in ("node", "npm", "redis-server"):
            if not shutil.which(tool):
                raise RuntimeError("%s not found (the original needs node and npm; redis-server "
                                   "is the Debian package redis-server)" % tool)
        for f in ["package.json"] + ["src/%s.js" % n for n in ORIGINAL_PROCS]:
            if not os.path.isfile(os.path.join(self.src, f)):
                raise RuntimeError("%s has no %s: not a checkout of %s" % (self.src, f, ORIGINAL_REPO))
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        # .env left out: the original's dotenv would read it (what it sets comes from us)
        shutil.copytree(self.src, self.app, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", ".env"))
        log("original: npm install --omit=dev in %s" % self.app)
        with open(os.path.join(self.bench.logdir, "original-npm.log"), "w") as lf:
            p = subprocess.run(["npm", "install", "--omit=dev", "--no-audit", "--no-fund"],
                               cwd=self.app, stdout=lf, stderr=subprocess.STDOUT, timeout=1800)
        if p.returncode != 0:
            raise RuntimeError("npm install failed (see %s/original-npm.log)" % self.bench.logdir)
        # the "limiter raised" variant: a second src/ beside the first (same node_modules), whose
        # starter queue's limiter (10 jobs per 5 s as shipped) lets 1,000,000 per second through
        shutil.copytree(os.path.join(self.app, "src"), os.path.join(self.app, "src_raised"))
        cfg = os.path.join(self.app, "src_raised", "config", "bullmq.js")
        text = open(cfg).read()
        i = text.find("PENDING_QUEUE_CONFIG = {")
        j = text.find("}", text.find("limiter", i)) if i >= 0 else -1
        block = text[i:j + 1] if j > i else ""
        new = block.replace("max: 10,", "max: 1000000,").replace("duration: 5000", "duration: 1000")
        if i < 0 or new == block or "max: 1000000" not in new or "duration: 1000" not in new:
            raise RuntimeError("cannot raise the starter limiter: %s is not as expected "
                               "(PENDING_QUEUE_CONFIG.limiter {max: 10, duration: 5000})" % cfg)
        open(cfg, "w").write(text[:i] + new + text[j + 1:])
        self.limiter = block[block.find("limiter"):].replace("\n", " ")
        self.limiter = " ".join(self.limiter.split())
        self.info.update(self.versions())
        self.start_redis()

    def versions(self):
        def pkg(path):
            try:
                with open(os.path.join(self.app, path, "package.json")) as f:
                    return json.load(f).get("version", "?")
            except OSError:
                return "?"
        v = {"node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
             "bullmq": pkg("node_modules/bullmq"), "dockerode": pkg("node_modules/dockerode"),
             "redis": subprocess.run(["redis-server", "--version"], capture_output=True,
                                     text=True).stdout.split(" v=")[-1].split()[0]}
        if os.path.isdir(os.path.join(self.src, ".git")):
            v["commit"] = subprocess.run(["git", "-C", self.src, "rev-parse", "HEAD"],
                                         capture_output=True, text=True).stdout.strip()
        return v

    def start_redis(self):
        self.port = free_port()
        self.redis_log = open(os.path.join(self.bench.logdir, "original-redis.log"), "a")
        self.redis = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
             "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
             "--logfile", ""], cwd=self.dir, stdin=subprocess.DEVNULL, stdout=self.redis_log,
            stderr=self.redis_log)
        t = time.time() + 30
        while True:
            try:
                if self.redis_cmd("PING") == "PONG":
                    break
            except OSError:
                pass
            if self.redis.poll() is not None or time.time() > t:
                raise RuntimeError("redis-server did not start (see original-redis.log)")
            time.sleep(0.1)

    def redis_cmd(self, *args):
        """One command over RESP; the first line of the answer without its type."""
        msg = "*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(x), x) for x in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as c:
            c.sendall(msg.encode())
            data = b""
            while not data.endswith(b"\r\n"):
                got = c.recv(4096)
                if not got:
                    break
                data += got
        line = data.decode().split("\r\n")[0]
        if line.startswith("-"):
            raise RuntimeError("redis: " + line[1:])
        return line[1:]

    # one run ----------------------------------------------------------------------------------
    def env(self):
        host = os.environ["CT_DOCKER_HOST"]
        if not host.startswith("unix://"):
            raise RuntimeError("CT_DOCKER_HOST is not a unix socket: %s" % host)
        e = dict(os.environ)
        e.update({"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.port),
                  "DOCKER_OPTIONS": json.dumps({"socketPath": host[len("unix://"):]}),
                  "LOG_LEVEL": "warn", "NODE_ENV": "production"})
        for k in ("REDIS_PASSWORD", "DOCKER_OPTIONS_FILE", "DOCKER_PULL", "DONT_START_CONTAINER",
                  "LOG_FILE", "DOCKER_TIMEOUT", "CONCURRENT_NOTIFIERS"):
            e.pop(k, None)  # the original's defaults
        return e

    def start(self, variant):
        self.redis_cmd("FLUSHALL")
        src = "src" if variant == "shipped" else "src_raised"
        env = self.env()
        for n in ORIGINAL_PROCS:
            lf = open(os.path.join(self.bench.logdir, "original-%s.log" % n), "a")
            p = subprocess.Popen(["node", os.path.join(src, n + ".js")], cwd=self.app, env=env,
                                 stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
            self.procs.append((n, p, lf))

    def stop(self):
        for n, p, lf in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for n, p, lf in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            lf.close()
        self.procs = []

    def run(self, variant, jobs, tag):
        """jobs through the original: ct-bench-load --mode sink receives the callbacks; the time
        counts from submit.cjs's start signal (all three processes connected) to the last."""
        b = self.bench
        sink_cmd = [os.path.join(b.bin, "ct-bench-load"), "--mode", "sink", "--jobs", str(jobs),
                    "--tag", tag, "--timeout", str(b.a.load_timeout)]
        sink = subprocess.Popen(sink_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = sink.stderr.readline().split()
            if len(first) != 2 or first[0] != "listening":
                raise RuntimeError("ct-bench-load --mode sink: %s" % " ".join(first))
            callback = first[1]
            self.start(variant)
            sub = [ "node", os.path.join(ROOT, "bench", "original", "submit.cjs"), "--app", self.app,
                   "--redis-port", str(self.port), "--jobs", str(jobs), "--image", "ct-ok",
                   "--file", b.file, "--callback", callback, "--tag", tag, "--signal", str(sink.pid)]
            b.r["commands"].append(" ".join(["ct-bench-load"] + sink_cmd[1:]) +
                                   "   # the sink; then the original's three processes (%s)" % variant)
            b.r["commands"].append(" ".join(["submit.cjs"] + sub[3:]).replace(callback, "URL"))
            p = subprocess.run(sub, capture_output=True, text=True, timeout=300)
            if p.returncode != 0:
                raise RuntimeError("submit.cjs failed: " + p.stderr[-500:].strip())
            box = {}
            reader = threading.Thread(target=lambda: box.update(zip(("out", "err"), sink.communicate())))
            reader.start()
            while reader.is_alive():
                reader.join(0.5)
                dead = [(n, q) for n, q, _ in self.procs if q.poll() is not None]
                if dead and sink.poll() is None:
                    sink.kill()
                    reader.join()
                    raise RuntimeError("the original's %s exited with status %s (see %s)" % (
                        dead[0][0], dead[0][1].returncode,
                        os.path.join(b.logdir, "original-%s.log" % dead[0][0])))
            if sink.returncode != 0:
                raise RuntimeError("the original, %s: %s" % (variant, box.get("err", "")[-300:].strip()))
            return json.loads(box["out"])
        finally:
            if sink.poll() is None:
                sink.kill()
                sink.wait()
            self.stop()
            remove_original_containers()

    def close(self):
        self.stop()
        if self.redis is not None:
            if self.redis.poll() is None:
                self.redis.terminate()  # the pid we started, nothing else
                try:
                    self.redis.wait(15)
                except subprocess.TimeoutExpired:
                    self.redis.kill()
                    self.redis.wait()
            self.redis = None
            self.redis_log.close()


# ------------------------------------------------------------------------------ statistics

def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(xs):
    """median and spread (min, max) of per-run figures"""
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "runs": xs}


def fmt(s, nd=1):
    return "%.*f (%.*f–%.*f)" % (nd, s["median"], nd, s["min"], nd, s["max"])


def mib(kib):
    return kib / 1024.0


# ------------------------------------------------------------------------------ the benchmarks

class Bench:
    def __init__(self, a):
        self.a = a
        self.bin = a.bin
        self.logdir = os.path.join(a.out, "logs")
        os.makedirs(self.logdir, exist_ok=True)
        self.file = os.path.join(os.environ["CT_TMP"], "bench-exercise.txt")
        with open(self.file, "w") as f:
            f.write("40 2\n")
        os.chmod(self.file, 0o644)
        self.r = {"commands": [], "config": vars(a).copy(), "errors": {}}
        self.pl = None
        self.orig = None
        self.orig_nofile = 1024  # the default container's open files limit, from network_probe

    def run(self, cmd, timeout=1800, record=True):
        if record:
            self.r["commands"].append(" ".join(os.path.basename(c) if i == 0 else c
                                               for i, c in enumerate(cmd)))
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           preexec_fn=join_client_group)
        if p.returncode != 0:
            log("command failed:", " ".join(cmd), p.stderr[-2000:])
            raise RuntimeError("%s failed" % cmd[0])
        return json.loads(p.stdout)

    def baseline(self, jobs, conc):
        return self.run([os.path.join(self.bin, "ct-bench-baseline"), "--jobs", str(jobs),
                         "--concurrency", str(conc), "--image", "ct-ok", "--file", self.file])

    def load(self, mode, jobs, *extra, tag="b"):
        env = dict(os.environ, RABBITMQ_HOST="127.0.0.1", RABBITMQ_PORT=os.environ["CT_RABBITMQ_PORT"])
        cmd = [os.path.join(self.bin, "ct-bench-load"), "--mode", mode, "--jobs", str(jobs),
               "--image", "ct-ok", "--file", self.file, "--tag", tag, *extra]
        self.r["commands"].append(" ".join([os.path.basename(cmd[0])] + cmd[1:]))
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             preexec_fn=join_client_group)
        box = {}
        reader = threading.Thread(target=lambda: box.update(zip(("out", "err"), p.communicate())))
        reader.start()
        while reader.is_alive():
            reader.join(0.5)
            dead = [d for d in (self.pl.d.values() if self.pl else []) if d.p.poll() is not None]
            if dead and p.poll() is None:
                p.kill()
                reader.join()
                raise RuntimeError("%s exited with status %s during the load (see %s)" % (
                    dead[0].name, dead[0].p.returncode, os.path.join(self.logdir, dead[0].name + ".log")))
        if p.returncode != 0:
            log("command failed:", " ".join(cmd), box.get("err", "")[-2000:])
            raise RuntimeError("ct-bench-load failed: " + box.get("err", "")[-300:].strip())
        return json.loads(box["out"])

    # 1. throughput ------------------------------------------------------------------------
    def throughput(self):
        a, out = self.a, {}
        for conc in a.concurrency:
            log("throughput: MAX_RUNNING=%d, %d jobs x %d runs" % (conc, a.jobs, a.runs))
            purge_queues()
            remove_containers()
            pl = Pipeline(self, MAX_RUNNING=conc)
            base, pipe, cpu, rss = [], [], {n: [] for n in pl.d}, {}
            try:
                for d in pl.d.values():
                    d.reset_peak()
                for run in range(a.runs):
                    b = self.baseline(a.jobs, conc)
                    base.append(b["jobs_per_s"])
                    c0 = pl.cpu()
                    p = self.load("pipeline", a.jobs, tag="t%d%d" % (conc, run))
                    c1 = pl.cpu()
                    pipe.append(p["per_s"])
                    for n in c0:
                        cpu[n].append((c1[n] - c0[n]) * 1000.0 / a.jobs)
                    log("  run %d: baseline %.2f/s, pipeline %.2f/s" % (run + 1, b["jobs_per_s"], p["per_s"]))
                rss = {n: dict(d.peak) for n, d in pl.d.items()}
            finally:
                pl.stop()
            ratio = [p / b for p, b in zip(pipe, base)]
            out[str(conc)] = {"baseline": summary(base), "pipeline": summary(pipe),
                              "ratio": summary(ratio),
                              "cpu_ms_per_job": {n: summary(v) for n, v in cpu.items()},
                              "peak_rss_kib": rss}
        self.r["throughput"] = out

    # 2. latency ---------------------------------------------------------------------------
    def latency(self):
        a = self.a
        log("latency: %d jobs one at a time x %d runs" % (a.latency_jobs, a.runs))
        purge_queues()
        remove_containers()
        pl = Pipeline(self, MAX_RUNNING=1)
        runs = []
        try:
            for run in range(a.runs):
                b = self.baseline(a.latency_jobs, 1)["latency_ms"]
                p = self.load("pipeline", a.latency_jobs, "--serial", tag="l%d" % run)["latency_ms"]
                r = {"baseline_median": pct(b, 50), "baseline_p99": pct(b, 99),
                     "pipeline_median": pct(p, 50), "pipeline_p99": pct(p, 99),
                     "baseline_ms": b, "pipeline_ms": p}
                r["overhead_median"] = r["pipeline_median"] - r["baseline_median"]
                r["overhead_p99"] = r["pipeline_p99"] - r["baseline_p99"]
                runs.append(r)
                log("  run %d: baseline median %.0f ms, pipeline median %.0f ms" %
                    (run + 1, r["baseline_median"], r["pipeline_median"]))
        finally:
            pl.stop()
        self.r["latency"] = {"runs": runs, **{k: summary([r[k] for r in runs]) for k in
                             ("baseline_median", "baseline_p99", "pipeline_median", "pipeline_p99",
                              "overhead_median", "overhead_p99")}}

    # 3. notifier --------------------------------------------------------------------------
    def notifier(self):
        a = self.a
        n = a.callbacks
        log("notifier: %d callbacks x %d runs" % (n, a.runs))
        rates, broker, cpu, rss, rss_anon = [], [], [], [], []
        env = dict(os.environ, RABBITMQ_HOST="127.0.0.1", RABBITMQ_PORT=os.environ["CT_RABBITMQ_PORT"])
        for run in range(a.runs):
            purge_queues()
            cmd = [os.path.join(self.bin, "ct-bench-load"), "--mode", "finished", "--jobs", str(n),
                   "--tag", "n%d" % run]
            self.r["commands"].append(" ".join(["ct-bench-load"] + cmd[1:]) +
                                      "   # then correctomatic-notifier, on \"loaded\"")
            p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for line in p.stderr:
                if line.strip() == "loaded":
                    break
                log("  load:", line.rstrip())
            d = Daemon(self.bin, "notifier", self.logdir, {})
            try:
                out, err = p.communicate(timeout=600)
                if p.returncode != 0:
                    raise RuntimeError("notifier load failed: " + err[-1000:])
                res = json.loads(out)
                rates.append(res["per_s"])
                cpu.append(d.cpu() * 1e6 / n)  # microseconds per callback
                rss.append(d.mem()["VmHWM"])
                rss_anon.append(d.peak.get("RssAnon", 0))
            finally:
                d.stop()
            b = self.load("broker", n, "--prefetch", "50", tag="k%d" % run)
            broker.append(b["per_s"])
            log("  run %d: notifier %.0f callbacks/s, broker alone %.0f msg/s" %
                (run + 1, res["per_s"], b["per_s"]))
        self.r["notifier"] = {"callbacks": n, "notifier": summary(rates), "broker": summary(broker),
                              "cpu_us_per_callback": summary(cpu), "vmhwm_kib": summary(rss),
                              "rss_anon_kib": summary(rss_anon)}

    # 5. where the engine's time goes (bench/profile.py) ----------------------------------------
    def profile(self):
        a = self.a
        n = 3 if a.quick else 20
        log("profile: %d containers per way, one at a time" % n)
        remove_containers()
        out = os.path.join(a.out, "profile.json")
        cmd = [sys.executable, os.path.join(ROOT, "bench", "profile.py"), "--n", str(n),
               "--json", out]
        self.r["commands"].append("profile.py --n %d" % n)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        if p.returncode != 0:
            raise RuntimeError("profile.py failed: " + p.stderr[-300:].strip())
        with open(out) as f:
            self.r["profile"] = json.load(f)

    # 6. the ways into a container, at the same concurrency ---------------------------------
    def docker_run(self, jobs, conc, bind, settings="ours"):
        """`docker run --rm`, conc at once: {"per_s", "first_after_s"}. settings "ours": the
        starter's (no network, the limits); "original": what the original's src/lib/docker.js
        asks for (Binds file:/tmp/exercise read-write, the engine's default network, no limits,
        the default capabilities)."""
        if settings == "original":
            args = ["docker", "run", "--rm", "--label", "ct-bench=run",
                    "-v", "%s:/tmp/exercise" % self.file]
        else:
            args = ["docker", "run", "--rm", "--network", "none", "--memory", "512m",
                    "--memory-swap", "512m", "--cpus", "1", "--pids-limit", "256",
                    "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                    "--log-driver", "json-file", "--log-opt", "max-size=4m", "--log-opt",
                    "max-file=2", "--ulimit", "fsize=%d" % (64 << 20), "--ulimit", "nofile=1024",
                    "--label", "ct-bench=run"]
            if bind:
                args += ["--mount", "type=bind,source=%s,target=/tmp/exercise,readonly" % self.file]
        args.append("ct-ok")
        self.r["commands"].append(" ".join(args) + "   # x%d, %d at once" % (jobs, conc))
        left, errors, first, lock = [jobs], [0], [], threading.Lock()

        def worker():
            while True:
                with lock:
                    if left[0] == 0:
                        return
                    left[0] -= 1
                p = subprocess.run(args, capture_output=True, timeout=600,
                                   preexec_fn=join_client_group)
                with lock:
                    if p.returncode != 0:
                        errors[0] += 1
                    elif not first:
                        first.append(time.monotonic())
        t0, c0 = time.monotonic(), cpu_now()
        ts = [threading.Thread(target=worker) for _ in range(conc)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        secs, cpu = time.monotonic() - t0, cpu_per_job(c0, jobs)
        if errors[0]:
            raise RuntimeError("docker run failed %d times" % errors[0])
        return {"per_s": jobs / secs, "first_after_s": first[0] - t0,
                "cpu_ms": cpu}

    # 6. the ways into a container, at the same concurrency ---------------------------------
    # 7. against the original correctomatic, in the same round-robin ---------------------------
    CONC = 8

    def ways_modes(self):
        """The pipeline in each EXERCISE_MODE beside the engine's own paths with the same
        settings: docker run --rm (file bind-mounted), the API baseline (uploaded, bind-mounted)."""
        a, conc = self.a, self.CONC

        def baseline(bind):
            def f(run):
                t0 = cpu_now()
                b = self.run([os.path.join(self.bin, "ct-bench-baseline"), "--jobs", str(a.jobs),
                              "--concurrency", str(conc), "--image", "ct-ok", "--file",
                              self.file] + (["--bind"] if bind else []))
                return {"per_s": b["jobs_per_s"], "cpu_ms": cpu_per_job(t0, a.jobs)}
            return f

        def pipeline(bind, no_hold=False, isolated=False, metrics=False):
            def f(run):
                env = {"MAX_RUNNING": conc}
                if bind:
                    env.update(EXERCISE_MODE="bind", EXERCISE_HOST_DIR=os.environ["CT_TMP"])
                if no_hold:
                    env["HOLD_JOBS"] = 0  # at capacity every job waits in the queue
                if isolated:
                    env["CORRECTION_NETWORK"] = "isolated"
                return self.pipeline_run(env, "m%s%s%s%s%d" % (
                    "bind" if bind else "upld", "hold0" if no_hold else "",
                    "iso" if isolated else "", "met" if metrics else "", run), scrape=metrics)
            return f
        return [("docker_run_bind", lambda run: self.docker_run(a.jobs, conc, True)),
                ("baseline_upload", baseline(False)), ("baseline_bind", baseline(True)),
                ("pipeline_upload", pipeline(False)), ("pipeline_bind", pipeline(True)),
                ("pipeline_bind_nohold", pipeline(True, no_hold=True)),
                ("pipeline_bind_isolated", pipeline(True, isolated=True)),
                ("pipeline_bind_metrics", pipeline(True, metrics=True))]

    def original_pipeline_env(self, uncapped=False):
        """Our starter as close to the original's containers as its configuration goes: the
        file bind-mounted, the engine's default network, every limit at its loosest (open files:
        what a container gets by default, the engine's own limit: more fails in runc), Docker's
        default capabilities given back (CapDrop ALL, no-new-privileges and the json-file log
        options stay: they are not settings). uncapped: MAX_RUNNING at the number of jobs, as
        the original's starter, which caps nothing."""
        return {"MAX_RUNNING": self.a.jobs if uncapped else self.CONC, "EXERCISE_MODE": "bind",
                "EXERCISE_HOST_DIR": os.environ["CT_TMP"], "CORRECTION_NETWORK": "default",
                "CORRECTION_MEMORY": "1024g", "CORRECTION_CPUS": str(os.cpu_count() or 1),
                "CORRECTION_PIDS": "4194304", "CORRECTION_MAX_FILE_SIZE": "1024g",
                "CORRECTION_MAX_OPEN_FILES": str(self.orig_nofile),
                "CORRECTION_CAP_ADD": DOCKER_DEFAULT_CAPS}

    def ways_original(self):
        a, conc = self.a, self.CONC
        o = self.orig

        def original(variant):
            def f(run):
                if o is None:
                    raise RuntimeError("the original is not set up")
                res = o.run(variant, a.jobs, "o%s%d" % (variant[0], run))
                check_successes(res, "the original (%s)" % variant)
                return {"per_s": res["per_s"], "first_after_s": res["first_after_s"]}
            return f
        return [("docker_run_original", lambda run: self.docker_run(a.jobs, conc, True, "original")),
                ("original_shipped", original("shipped")),
                ("original_raised", original("raised")),
                ("pipeline_original", lambda run: self.pipeline_run(self.original_pipeline_env(),
                                                                    "mo%d" % run)),
                ("pipeline_original_uncapped",
                 lambda run: self.pipeline_run(self.original_pipeline_env(uncapped=True),
                                               "mu%d" % run))]

    def pipeline_run(self, env, tag, scrape=False):
        """scrape: each daemon serves its metrics (METRICS_LISTEN), and a scraper reads all three
        every second while the batch runs (Prometheus' default is 15 s: a harsher load)."""
        per, stop, scraper, scrapes = None, threading.Event(), None, [0]
        if scrape:
            per = {n: {"METRICS_LISTEN": "127.0.0.1:%d" % free_port()}
                   for n in ("starter", "completer", "notifier")}
        # Not sampled: on a machine the engine keeps busy, this script's samplers (three threads
        # waking every 50 ms) cost 8 ms of CPU per job, 1.3% of the machine's, charged to the
        # pipeline's ways alone (measured with --cpu-split). VmHWM is the kernel's own peak.
        pl = Pipeline(self, per_daemon=per, sample=False, **env)
        if scrape:
            def scrape_loop():
                while not stop.wait(1.0):
                    for n in per:
                        url = "http://%s/metrics" % per[n]["METRICS_LISTEN"]
                        with urllib.request.urlopen(url, timeout=5) as resp:
                            resp.read()
                        scrapes[0] += 1
            scraper = threading.Thread(target=scrape_loop, daemon=True)
            scraper.start()
        t0 = cpu_now()
        try:
            r = self.load("pipeline", self.a.jobs, tag=tag)
            cpu = cpu_per_job(t0, self.a.jobs)
        finally:
            stop.set()
            if scraper:
                scraper.join(10)
            peak = {n: d.hwm() for n, d in pl.d.items()}
            pl.stop()
        check_successes(r, "the pipeline")
        if scrape and scrapes[0] == 0:
            raise RuntimeError("no scrape of the daemons' metrics succeeded")
        return {"per_s": r["per_s"], "first_after_s": r["first_after_s"], "peak_kib": peak,
                "cpu_ms": cpu}

    def network_probe(self):
        """What a container with the engine's default network (the original's: no NetworkMode)
        gets on this engine: its interfaces and routes, and the engine's networks."""
        out = docker("run", "--rm", "--label", "ct-bench=probe", "ct-ok", "sh", "-c",
                     "cat /proc/net/dev; echo ROUTES; ip route; ip -6 route; echo NOFILE $(ulimit -Hn)",
                     timeout=120)
        ifaces, routes, in_routes, nofile = [], [], False, None
        for line in out.splitlines():
            if line.startswith("NOFILE "):
                nofile = line.split()[1]
            elif line.strip() == "ROUTES":
                in_routes = True
            elif in_routes:
                if line.strip():
                    routes.append(line.strip())
            elif ":" in line and "|" not in line:
                ifaces.append(line.split(":")[0].strip())
        nets = docker("network", "ls", "--format", "{{.Name}} ({{.Driver}})").split("\n")
        if nofile and nofile.isdigit():
            self.orig_nofile = min(int(nofile), 1048576)
        return {"interfaces": ifaces, "routes": routes, "nofile": nofile,
                "engine_networks": [n for n in nets if n.strip()]}

    def measure(self, parts):
        """The ways of the parts ("modes", "original") round-robin within each run (a busy
        machine weighs on every way alike), conc at once, a.jobs jobs of ct-ok each. A way that
        fails is recorded and left out of the later runs; the others go on."""
        a, conc = self.a, self.CONC
        ways, part_of, setup_err = [], {}, None
        if "original" in parts:
            self.orig = None
            info = {"concurrency": conc, "jobs": a.jobs}
            if not a.original:
                info["skipped"] = ("no checkout of the original given (--original DIR or "
                                   "CT_ORIGINAL_DIR)")
            else:
                try:
                    info["network"] = self.network_probe()
                    o = Original(self, a.original)
                    self.orig = o
                    o.prepare()
                    info["original"] = o.info
                    info["limiter_shipped"] = o.limiter
                except Exception as e:
                    setup_err = str(e)
                    info["setup_error"] = setup_err
                    log("original: setup FAILED: %s" % e)
            self.r["original"] = info
            if "skipped" not in info:
                info["settings"] = {
                    "docker_run_original": "docker run --rm -v FILE:/tmp/exercise ct-ok, %d at once"
                    % conc, "pipeline_original": self.original_pipeline_env(),
                    "pipeline_original_uncapped": self.original_pipeline_env(uncapped=True)}
                for w, f in self.ways_original():
                    ways.append((w, f))
                    part_of[w] = "original"
        if "modes" in parts:
            for w, f in self.ways_modes():
                ways.append((w, f))
                part_of[w] = "modes"
        if a.ways:
            keep = set(a.ways.split(","))
            unknown = keep - {w for w, _ in ways}
            if unknown:
                raise RuntimeError("--ways: no such way here: %s" % ", ".join(sorted(unknown)))
            ways = [(w, f) for w, f in ways if w in keep]
        got = {w: {"per_s": [], "first_after_s": [], "peak_kib": [], "cpu_ms": []} for w, _ in ways}
        errors = {}
        if setup_err:
            for w, _ in ways:
                if w.startswith("original_"):
                    errors[w] = "setup: " + setup_err
        if ways:
            log("%s: MAX_RUNNING=%d, %d jobs x %d runs: %s" % (
                "+".join(parts), conc, a.jobs, a.runs, ", ".join(w for w, _ in ways)))
        load0 = open("/proc/loadavg").read().split()[:3]
        warmup = self.warm_up() if ways else None
        try:
            for run in range(a.runs):
                # Forward in even runs, backward in odd ones: an engine that drifts through a
                # series weighs on every way alike over two runs (a fixed order put the
                # pipeline, fifth of seven, always later than the baselines).
                for w, f in (ways if run % 2 == 0 else ways[::-1]):
                    if w in errors:
                        continue
                    purge_queues()
                    remove_containers()
                    remove_original_containers()
                    try:
                        v = f(run)
                    except Exception as e:
                        errors[w] = str(e)
                        log("  run %d: %s FAILED: %s" % (run + 1, w, e))
                        if self.pl:
                            self.pl.stop()
                        continue
                    for k in got[w]:
                        if v.get(k) is not None:
                            got[w][k].append(v[k])
                    log("  run %d: %s %.2f jobs/s%s%s" % (
                        run + 1, w, v["per_s"], ", first callback after %.2f s" % v["first_after_s"]
                        if v.get("first_after_s") is not None else "",
                        ", CPU ms/job: " + ", ".join("%s %.1f" % x for x in v["cpu_ms"].items())
                        if v.get("cpu_ms") else ""))
        finally:
            if "original" in parts and getattr(self, "orig", None):
                self.orig.close()
        load1 = open("/proc/loadavg").read().split()[:3]
        for part in parts:
            mine = [w for w, _ in ways if part_of[w] == part]
            res = self.r["original"] if part == "original" else {"concurrency": conc, "jobs": a.jobs}
            res["loadavg"] = [load0, load1]
            res["warmup_per_s"] = warmup
            res["order"] = "forward in odd-numbered runs, backward in even-numbered ones"
            if part == "original":
                res["ways"] = {w: {k: summary(v) for k, v in got[w].items()
                                   if v and k not in ("peak_kib", "cpu_ms")} for w in mine
                               if got[w]["per_s"]}
            else:
                for w in mine:
                    if got[w]["per_s"]:
                        res[w] = summary(got[w]["per_s"])
                res["first_after_s"] = {w: summary(got[w]["first_after_s"]) for w in mine
                                        if got[w]["first_after_s"]}
                # each daemon's peak resident memory, its largest over the runs (KiB)
                res["peak_kib"] = {w: {n: max(p[n] for p in got[w]["peak_kib"])
                                       for n in got[w]["peak_kib"][0]}
                                   for w in mine if got[w]["peak_kib"]}
            # CPU per job over each batch: the whole machine's (the engine, the corrections,
            # the broker, our daemons or the baseline's client), split with --cpu-split
            res["cpu_ms"] = {w: {k: summary([c[k] for c in got[w]["cpu_ms"]])
                                 for k in got[w]["cpu_ms"][0]}
                             for w in mine if got[w]["cpu_ms"]}
            res["errors"] = {w: e for w, e in errors.items() if part_of[w] == part}
            self.r[part] = res
        if all(w in errors for w, _ in ways) and ways:
            raise RuntimeError("every way failed: " + "; ".join("%s: %s" % x for x in errors.items()))

    def warm_up(self):
        """An unrecorded batch before the first measured run: on a fresh engine the first few
        hundred containers go faster than the ones after (measured: 8.6 jobs/s for the first
        120 of the API baseline, then 7.0 to 7.8 for the next nine batches), which favoured
        whatever ran first."""
        a = self.a
        jobs = max(a.jobs, 100)
        b = self.run([os.path.join(self.bin, "ct-bench-baseline"), "--jobs", str(jobs),
                      "--concurrency", str(self.CONC), "--image", "ct-ok", "--file", self.file,
                      "--bind"])
        log("  warm-up: %d jobs of the API baseline, %.2f jobs/s (not recorded)"
            % (jobs, b["jobs_per_s"]))
        return b["jobs_per_s"]

    def modes(self):
        self.measure(["modes"])

    def original(self):
        self.measure(["original"])

    # 4. scale -----------------------------------------------------------------------------
    def scale(self):
        a = self.a
        res = {"gone": {}, "created": {}, "idle": {}}
        # running messages whose containers are gone: fresh daemons for each level
        for k in a.gone_levels:
            log("scale: %d running messages whose containers are gone" % k)
            purge_queues()
            pl = Pipeline(self)
            try:
                idle = {n: d.mem() for n, d in pl.d.items()}
                for n, m in idle.items():
                    res["idle"].setdefault(n, []).append(m)
                for d in pl.d.values():
                    d.reset_peak()
                c0 = pl.cpu()
                r = self.load("gone", k, tag="g%d" % k)
                c1 = pl.cpu()
                res["gone"][str(k)] = {
                    "per_s": r["per_s"], "seconds": r["seconds"],
                    "mem": {n: {**d.peak, "VmHWM": d.mem()["VmHWM"]} for n, d in pl.d.items()},
                    "cpu_us_per_job": {n: (c1[n] - c0[n]) * 1e6 / k for n in c0}}
                log("  %.0f jobs/s; completer peak %.1f MiB, notifier peak %.1f MiB" %
                    (r["per_s"], mib(pl["completer"].peak.get("VmRSS", 0)),
                     mib(pl["notifier"].peak.get("VmRSS", 0))))
            finally:
                pl.stop()
        # created-not-started containers, cumulative levels on the same daemons
        purge_queues()
        remove_containers()
        pl = Pipeline(self, DONT_START_CONTAINER="true", MAX_RUNNING=8)
        try:
            have = 0
            c0 = pl.cpu()
            for k in a.created_levels:
                log("scale: completer tracking %d created-not-started containers" % k)
                for d in pl.d.values():
                    d.reset_peak()
                t0 = time.time()
                self.load("publish", k - have, tag="c%d" % k)
                deadline = time.time() + 1800
                while True:
                    q = queue_stats("running_corrections")
                    pend = queue_stats("pending_corrections")
                    if (q.get("messages_unacknowledged", 0) >= k and q.get("messages_ready", 1) == 0
                            and pend.get("messages", 1) == 0):
                        break
                    if time.time() > deadline:
                        raise RuntimeError("created containers: not tracked in time")
                    time.sleep(0.5)
                secs = time.time() - t0
                time.sleep(1.0)
                c1 = pl.cpu()
                res["created"][str(k)] = {
                    "seconds": secs, "per_s": (k - have) / secs,
                    "mem": {n: {**d.peak, **d.mem()} for n, d in pl.d.items()},
                    "cpu_us_per_job": {n: (c1[n] - c0[n]) * 1e6 / k for n in c0}}
                log("  %.1f containers/s; starter %.1f MiB, completer %.1f MiB" %
                    ((k - have) / secs, mib(pl["starter"].mem()["VmRSS"]),
                     mib(pl["completer"].mem()["VmRSS"])))
                have = k
        finally:
            pl.stop()
            purge_queues()
            remove_containers()
        self.r["scale"] = res


# ------------------------------------------------------------------------------ report

def facts():
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1])
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ov = mgmt("GET", "/overview") or {}
    dv = docker("version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})").strip()
    return {"loadavg_start": open("/proc/loadavg").read().split()[:3], "nproc": os.cpu_count(), "mem_gib": mem / 1024 / 1024, "cpu": model,
            "kernel": platform.release(), "docker": dv,
            "rabbitmq": ov.get("rabbitmq_version", "?"), "erlang": ov.get("erlang_version", "?"),
            "os": open("/etc/debian_version").read().strip() if os.path.exists("/etc/debian_version") else ""}


def plots(r, docs):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("no matplotlib: no plots")
        return []
    made = []
    if "throughput" in r:
        t = r["throughput"]
        cs = sorted(t, key=int)
        x = range(len(cs))
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for off, key, label in ((-0.2, "baseline", "Docker API directly (baseline)"),
                                (0.2, "pipeline", "pipeline, publish to callback")):
            med = [t[c][key]["median"] for c in cs]
            lo = [t[c][key]["median"] - t[c][key]["min"] for c in cs]
            hi = [t[c][key]["max"] - t[c][key]["median"] for c in cs]
            ax.bar([i + off for i in x], med, 0.4, yerr=[lo, hi], capsize=3, label=label)
        ax.set_xticks(list(x))
        ax.set_xticklabels(["MAX_RUNNING=%s" % c for c in cs])
        ax.set_ylabel("jobs/s")
        ax.set_title("Throughput, trivial image (median, min–max)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(docs, "bench-throughput.png"), dpi=110)
        plt.close(fig)
        made.append("bench-throughput.png")
    if "scale" in r and r["scale"]["gone"]:
        g = r["scale"]["gone"]
        ks = sorted(g, key=int)
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for n in ("completer", "notifier", "starter"):
            ax.plot([int(k) for k in ks], [mib(g[k]["mem"][n].get("VmHWM", 0)) for k in ks],
                    marker="o", label="%s VmHWM" % n)
            ax.plot([int(k) for k in ks], [mib(g[k]["mem"][n].get("RssAnon", 0)) for k in ks],
                    marker="x", linestyle="--", label="%s RssAnon (peak)" % n)
        c = r["scale"]["created"]
        if c:
            kc = sorted(c, key=int)
            ax.plot([int(k) for k in kc], [mib(c[k]["mem"]["completer"]["VmRSS"]) for k in kc],
                    marker="s", label="completer VmRSS, created containers")
        ax.axhline(16, color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel("jobs in the scenario")
        ax.set_ylabel("MiB")
        ax.set_title("Resident memory under load")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(docs, "bench-memory.png"), dpi=110)
        plt.close(fig)
        made.append("bench-memory.png")
    return made


def report_original(o, w, targets, with_modes):
    w("## 7. Against the original correctomatic")
    w("")
    if o.get("skipped") or not o.get("ways"):
        w("Not measured in this run: %s. The original, correctomatic/correction-runner (Node, "
          "BullMQ on Redis), is not part of this repository: clone it (`git clone %s`) and run "
          "`sudo bench/run.sh --only modes,original --original /path/to/correction-runner` (or set "
          "`CT_ORIGINAL_DIR`). It needs node and npm (its dependencies are installed with `npm "
          "install --omit=dev` in a scratch copy) and redis-server (a private one is started)." % (
              o.get("skipped") or o.get("setup_error") or "every way failed", ORIGINAL_REPO))
        w("")
        for k, e in o.get("errors", {}).items():
            w("- **%s failed:** %s" % (k, e.replace("|", "/")[:300]))
        if o.get("errors"):
            w("")
        return
    ways = o["ways"]
    info = o.get("original", {})
    w("%d jobs of `ct-ok` per run, each way in turn within a run%s: the original correctomatic "
      "(its checkout at `%s`%s, node %s, bullmq %s, dockerode %s, a private redis-server %s), "
      "`docker run --rm` with the containers the original asks for, and our pipeline set as close "
      "to those as its configuration goes. jobs/s, and the first callback's delay after the jobs "
      "were submitted (for `docker run`: the first container done). Load average (1, 5, 15 min) "
      "at start / end: %s / %s." % (
          o["jobs"], " (and with the ways of section 6)" if with_modes else "",
          info.get("checkout", "?"), ", commit " + info["commit"][:12] if info.get("commit") else "",
          info.get("node", "?"), info.get("bullmq", "?"), info.get("dockerode", "?"),
          info.get("redis", "?"), " ".join(o["loadavg"][0]), " ".join(o["loadavg"][1])))
    w("")
    w("| way | jobs/s | first callback, s |")
    w("|---|---|---|")
    names = {"docker_run_original": "`docker run --rm`, the original's container settings, %d at once"
             % o["concurrency"],
             "original_shipped": "the original as shipped (starter `%s`)" % (
                 o.get("limiter_shipped", "limiter: { max: 10, duration: 5000 }")),
             "original_raised": "the original, starter limiter raised (1,000,000 / s)",
             "pipeline_original": "our pipeline with the original's settings, `MAX_RUNNING=%d`" %
             o["concurrency"],
             "pipeline_original_uncapped": "our pipeline with the original's settings, "
             "`MAX_RUNNING=%d` (the number of jobs: as uncapped as the original's starter)" %
             o["jobs"]}
    for k, label in names.items():
        if k in ways:
            x = ways[k]
            w("| %s | %s | %s |" % (label, fmt(x["per_s"], 2),
                                    fmt(x["first_after_s"], 2) if "first_after_s" in x else "–"))
        elif k in o.get("errors", {}):
            w("| %s | failed: %s | |" % (label, o["errors"][k].replace("|", "/")[:150]))
    w("")
    report_cpu(o.get("cpu_ms", {}), names, w, targets,
               {k: ways[k]["per_s"]["runs"] for k in names if k in ways})

    def med(k, f="per_s"):
        return ways.get(k, {}).get(f, {}).get("median")
    ours = med("pipeline_original")
    uncapped = med("pipeline_original_uncapped")
    lines = []
    if ours and med("original_raised"):
        x = ours / med("original_raised")
        lines.append("ours (`MAX_RUNNING=%d`) / the original with its limiter raised: **%.2f×**"
                     % (o["concurrency"], x))
        if not uncapped:
            targets.append(("pipeline faster than the original (limiter raised), its settings, "
                            "same run", "%.2f×" % x, x > 1.0))
    if uncapped and med("original_raised"):
        x = uncapped / med("original_raised")
        lines.append("ours uncapped as the original / the original with its limiter raised: "
                     "**%.2f×**" % x)
        targets.append(("pipeline faster than the original (limiter raised), its settings "
                        "(uncapped as it is), same run", "%.2f×" % x, x > 1.0))
    if ours and med("original_shipped"):
        lines.append("ours / the original as shipped: %.2f×" % (ours / med("original_shipped")))
    if ours and med("docker_run_original"):
        x = ours / med("docker_run_original")
        lines.append("ours / `docker run` with the same settings: **%.0f%%**" % (100 * x))
        targets.append(("pipeline ≥ 95% of docker run, the original's settings", "%.0f%%" % (100 * x),
                        x >= 0.95))
    if med("original_raised") and med("docker_run_original"):
        lines.append("the original (raised) / `docker run`: %.0f%%" % (
            100 * med("original_raised") / med("docker_run_original")))
    f_ours, f_orig = med("pipeline_original", "first_after_s"), med("original_raised", "first_after_s")
    if f_ours is not None and f_orig is not None:
        lines.append("first callback: ours %.2f s, the original (raised) %.2f s" % (f_ours, f_orig))
    if lines:
        w("Ratios of the medians: " + "; ".join(lines) + ".")
        w("")
    for k, e in o.get("errors", {}).items():
        w("- **%s failed:** %s" % (k, e.replace("|", "/")[:300]))
    if o.get("errors"):
        w("")
    st = o.get("settings", {})
    w("Settings:")
    w("")
    w("- The original's containers (its `src/lib/docker.js`): `HostConfig` with only "
      "`Binds: [\"FILE:/tmp/exercise\"]` (read-write) and `AutoRemove: false` (its completer "
      "removes the container after reading the logs): no `NetworkMode` (the engine's default), no "
      "memory, CPU or process limit, the default capabilities. `docker run` here: `%s`." %
      st.get("docker_run_original", "docker run --rm -v FILE:/tmp/exercise ct-ok"))
    w("- The original's processes: `node src/correction_{starter,completer,notifier}.js` from a "
      "scratch copy with `REDIS_HOST`/`REDIS_PORT` (a private redis-server, flushed before each "
      "run), `DOCKER_OPTIONS={\"socketPath\": <the private engine's socket>}`, `LOG_LEVEL=warn`, "
      "everything else at its defaults (`DOCKER_TIMEOUT` 5 s, `CONCURRENT_NOTIFIERS` 50, the "
      "notifier's limiter of 20 callbacks/s). Its starter is one BullMQ worker (concurrency 1): it "
      "starts containers one after the other and does not cap how many run. The jobs "
      "(`{work_id, image, file, callback}`) go into `pending_corrections` with one `addBulk` of "
      "`bench/original/submit.cjs` once all three processes have a worker connected; the callbacks "
      "go to `ct-bench-load --mode sink`. \"Limiter raised\": the copy's "
      "`src/config/bullmq.js` with the starter queue's limiter at 1,000,000 per second.")
    pe = st.get("pipeline_original", {})
    if pe:
        w("- Our pipeline: " + ", ".join("`%s=%s`" % kv for kv in pe.items()) +
          (" (uncapped: `MAX_RUNNING=%s`)" % st["pipeline_original_uncapped"]["MAX_RUNNING"]
           if "pipeline_original_uncapped" in st else "") +
          ". Not settable, so still there: `CapDrop ALL` (with the default set added back), "
          "`no-new-privileges`, the json-file log options, the `fsize` and `nofile` ulimits (`fsize` at "
          "1 TiB, `nofile` at what a container gets by default), the submission mounted read-only.")
    net = o.get("network")
    if net:
        only_lo = net.get("interfaces") == ["lo"] and not net.get("routes")
        w("- The network the original's containers got on this engine (a `ct-ok` container "
          "without `NetworkMode`): interfaces %s, routes %s; the engine's networks: %s.%s" % (
              ", ".join("`%s`" % i for i in net.get("interfaces", [])) or "none",
              ", ".join("`%s`" % x for x in net.get("routes", [])) or "none",
              ", ".join(net.get("engine_networks", [])),
              " The engine has no default bridge (tests/servers.sh runs dockerd with "
              "`--bridge=none --iptables=false`): the engine's default network is a namespace "
              "of its own with loopback only, no way out, as with `none`. On an engine with "
              "its default bridge (`docker0`) they would get a veth on it and a default route, "
              "which costs more per container (section 5, `internal`)." if only_lo else ""))
    w("")


CPU_PARTS = (("engine", "engine"), ("containers", "corrections"), ("broker", "RabbitMQ"),
             ("ours", "our daemons"), ("client", "client"), ("bench", "bench.py"),
             ("rest", "kernel and the rest"))


def report_cpu(cpu, names, w, targets, per_s):
    """The machine's CPU per job of each way (bench.py --cpu-split: split by who used it).
    per_s: each way's jobs/s, run by run."""
    ways = [k for k in names if k in cpu]
    if not ways:
        return
    parts = [(k, label) for k, label in CPU_PARTS if any(k in cpu[x] for x in ways)]
    w("The machine's busy CPU per job over each batch (`/proc/stat`, every core; medians)%s. "
      "Busy cores: jobs/s times that, the cores the batch kept busy (of %d): where it is all of "
      "them, jobs/s is the cores over the CPU per job." % (
          ", split by who used it (`--cpu-split`: cpuacct groups; the client is "
          "`ct-bench-load`, `ct-bench-baseline` or the `docker` CLI)" if parts else "",
          os.cpu_count() or 1))
    w("")
    w("| way | busy cores | machine ms/job |%s" % "".join(" %s |" % label for _, label in parts))
    w("|---|---|---|%s" % ("---|" * len(parts)))
    for k in ways:
        busy = [j * c / 1000.0 for j, c in zip(per_s.get(k, []), cpu[k]["machine"]["runs"])]
        w("| %s | %s | %.0f |%s" % (names[k], "%.2f" % statistics.median(busy) if busy else "–",
                                    cpu[k]["machine"]["median"], "".join(
            " %.1f |" % cpu[k][p]["median"] if p in cpu[k] else " – |" for p, _ in parts)))
    w("")
    est = []
    for pipe, base in (("pipeline_bind", "baseline_bind"), ("pipeline_upload", "baseline_upload")):
        if pipe in cpu and base in cpu and (len(cpu[pipe]["machine"]["runs"]) ==
                                            len(cpu[base]["machine"]["runs"])):
            pm, bm = cpu[pipe]["machine"]["runs"], cpu[base]["machine"]["runs"]
            extra = [p - b for p, b in zip(pm, bm)]
            w("- `%s` over `%s`, run by run: %s ms/job (median %+.0f, %+.1f%% of the "
              "baseline's)%s." % (pipe, base, ", ".join("%+.0f" % x for x in extra),
                                   statistics.median(extra),
                                   100 * statistics.median(extra) / statistics.median(bm),
                                   "; by part, medians: " + ", ".join(
                                       "%s %+.1f" % (label, cpu[pipe][p]["median"] -
                                                     cpu[base][p]["median"])
                                       for p, label in parts
                                       if p in cpu[pipe] and p in cpu[base]) if parts else ""))
            if "containers" in cpu[pipe] and "containers" in cpu[base]:
                # The corrections' own CPU is the same work in every way: the machine's CPU
                # over it takes out how fast the (shared) host ran each batch.
                pc, bc = cpu[pipe]["containers"]["runs"], cpu[base]["containers"]["runs"]
                rel = [(p / c) / (b / d) for p, c, b, d in zip(pm, pc, bm, bc)]
                # jobs/s = busy cores / CPU per job in each batch: the throughput ratio this
                # CPU ratio means, with the pair's busy cores (the ends of a batch)
                busy = [(jp * p) / (jb * b) for jp, p, jb, b in
                        zip(per_s.get(pipe, []), pm, per_s.get(base, []), bm)]
                est.append((pipe, base, rel, [u / x for u, x in zip(busy, rel)]))
    w("")
    for pipe, base, rel, thr in est:
        w("- The machine's CPU per job over the corrections' own (the same work in every way, so "
          "the ratio takes out how fast the shared host ran each batch), `%s` over `%s`, run by "
          "run: %s; median %.3f. With each pair's busy cores, the throughput that means, run by "
          "run: %s; median **%.1f%%** of the baseline's." % (
              pipe, base, ", ".join("%.3f" % x for x in rel), statistics.median(rel),
              ", ".join("%.1f%%" % (100 * x) for x in thr), 100 * statistics.median(thr)))
        targets.append(("%s ≥ 95%% of %s, by busy cores over CPU per job (the corrections' CPU "
                        "as the host's yardstick)" % (pipe, base),
                        "%.1f%%" % (100 * statistics.median(thr)),
                        statistics.median(thr) >= 0.95))
    if est:
        w("")


def report(r, docs, made, cmdline):
    f = r["facts"]
    L = []
    w = L.append
    w("# Benchmarks")
    w("")
    w("Written by `%s` on %s; raw figures in `docs/bench-results.json`. Every figure is a median "
      "over %d runs with the spread (min–max) in brackets, unless it says otherwise." %
      (cmdline, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(r["finished"])), r["config"]["runs"]))
    w("")
    w("## Machine")
    w("")
    w("| | |")
    w("|---|---|")
    w("| cores (nproc) | %d (%s) |" % (f["nproc"], f["cpu"]))
    w("| memory | %.1f GiB |" % f["mem_gib"])
    w("| kernel / Debian | %s / %s |" % (f["kernel"], f["os"]))
    w("| Docker engine | %s, private `dockerd` of tests/servers.sh (overlay2) |" % f["docker"])
    w("| RabbitMQ | %s (Erlang %s), private node of tests/servers.sh |" % (f["rabbitmq"], f["erlang"]))
    w("| load average (1, 5, 15 min) at start / end | %s / %s (other work shared the machine) |" % (
        " ".join(f.get("loadavg_start", [])), " ".join(f.get("loadavg_end", []))))
    w("| build | `-DCMAKE_BUILD_TYPE=Release`, daemons at `LOG_LEVEL=info` (logs to a file) |")
    w("")
    w("Image: `ct-ok` (busybox-static and a shell script printing a JSON response), the same for "
      "the baseline and the pipeline. The baseline (`ct-bench-baseline`, C, our `common/docker.c` "
      "client) does per job what the pipeline's Docker work is: create (the starter's HostConfig), "
      "upload the file, start, wait, logs, remove, with as many jobs in flight as `MAX_RUNNING`.")
    w("")
    targets = []
    if "throughput" in r:
        t = r["throughput"]
        w("## 1. Throughput")
        w("")
        w("%d jobs per run published at once to `pending_corrections`; time from the first publish "
          "to the last callback (all three daemons, callbacks to a local sink). Baseline: the same "
          "number of containers through the Docker API at the same concurrency." % r["config"]["jobs"])
        w("")
        w("| MAX_RUNNING | baseline jobs/s | pipeline jobs/s | pipeline / baseline | "
          "CPU ms/job starter | completer | notifier |")
        w("|---|---|---|---|---|---|---|")
        for c in sorted(t, key=int):
            x = t[c]
            cj = x["cpu_ms_per_job"]
            w("| %s | %s | %s | %s | %s | %s | %s |" % (
                c, fmt(x["baseline"], 2), fmt(x["pipeline"], 2),
                "%.0f%% (%.0f–%.0f%%)" % (100 * x["ratio"]["median"], 100 * x["ratio"]["min"],
                                          100 * x["ratio"]["max"]),
                fmt(cj["starter"], 2), fmt(cj["completer"], 2), fmt(cj["notifier"], 2)))
            targets.append(("throughput ≥ 90%% of baseline, MAX_RUNNING=%s" % c,
                            "%.0f%%" % (100 * x["ratio"]["median"]), x["ratio"]["median"] >= 0.9))
        w("")
        if "bench-throughput.png" in made:
            w("![throughput](bench-throughput.png)")
            w("")
        w("Peak resident memory during these runs (VmRSS sampled every 50 ms, MiB): " + "; ".join(
            "MAX_RUNNING=%s: %s" % (c, ", ".join("%s %.1f" % (n, mib(m.get("VmRSS", 0)))
                                             for n, m in t[c]["peak_rss_kib"].items()))
            for c in sorted(t, key=int)) + ".")
        w("")
    if "latency" in r:
        l = r["latency"]
        w("## 2. Latency")
        w("")
        w("%d jobs one at a time per run (`MAX_RUNNING=1`; the next job is published when the "
          "previous callback arrived): publish-to-callback time, against the baseline's "
          "create-to-removed time at concurrency 1. Overhead = pipeline − baseline, for the "
          "median and for the p99 of each run." % r["config"]["latency_jobs"])
        w("")
        w("| | median ms | p99 ms |")
        w("|---|---|---|")
        w("| baseline (Docker API directly) | %s | %s |" % (fmt(l["baseline_median"]), fmt(l["baseline_p99"])))
        w("| pipeline | %s | %s |" % (fmt(l["pipeline_median"]), fmt(l["pipeline_p99"])))
        w("| **overhead** | **%s** | %s |" % (fmt(l["overhead_median"]), fmt(l["overhead_p99"])))
        w("")
        targets.append(("median latency overhead < 30 ms", "%.0f ms" % l["overhead_median"]["median"],
                        l["overhead_median"]["median"] < 30))
    if "notifier" in r:
        n = r["notifier"]
        w("## 3. Notifier")
        w("")
        w("%d results preloaded in `finished_corrections`, then a fresh notifier "
          "(`CONCURRENT_NOTIFIERS=50`, the default) delivers them to a local keep-alive HTTP sink "
          "(`ct-bench-load`, libuv, answers 200); time from the notifier's start to the last "
          "callback. Broker alone: the same messages published to a queue, then consumed and acked "
          "with the same prefetch (50), no HTTP." % n["callbacks"])
        w("")
        w("| | per second |")
        w("|---|---|")
        w("| notifier, callbacks | %s |" % fmt(n["notifier"], 0))
        w("| broker alone, consume + ack | %s |" % fmt(n["broker"], 0))
        w("| notifier / broker | %.0f%% |" % (100 * n["notifier"]["median"] / n["broker"]["median"]))
        w("")
        w("Notifier CPU: %s µs per callback; VmHWM %s MiB; peak RssAnon %s MiB." % (
            fmt(n["cpu_us_per_callback"], 0),
            fmt({k: (mib(v) if k != "runs" else v) for k, v in n["vmhwm_kib"].items()}, 1),
            fmt({k: (mib(v) if k != "runs" else v) for k, v in n["rss_anon_kib"].items()}, 1)))
        w("")
        targets.append(("notifier ≥ 2,000 callbacks/s", "%.0f/s" % n["notifier"]["median"],
                        n["notifier"]["median"] >= 2000))
    if "scale" in r:
        s = r["scale"]
        w("## 4. Scale")
        w("")
        w("Resident memory from `/proc/<pid>/status`: **VmRSS** (what `ps` shows: includes the pages "
          "of shared libraries mapped from disk, libcrypto, libcurl, libc..., shared with every "
          "other process using them), **RssAnon** (the process's own memory: heap, stacks), and "
          "**VmHWM** (peak VmRSS). CPU time is utime+stime from `/proc/<pid>/stat`.")
        w("")
        idle = s["idle"]
        w("### Idle (connected, nothing to do)")
        w("")
        w("| daemon | VmRSS MiB | RssAnon MiB | RssFile MiB | Pss MiB |")
        w("|---|---|---|---|---|")
        for d in ("starter", "completer", "notifier"):
            ms = idle.get(d, [])
            if not ms:
                continue
            med = lambda k: statistics.median(m.get(k, 0) for m in ms)
            w("| %s | %.1f | %.1f | %.1f | %.1f |" % (d, mib(med("VmRSS")), mib(med("RssAnon")),
                                                     mib(med("RssFile")), mib(med("Pss"))))
            targets.append(("%s idle < 8 MiB (VmRSS)" % d, "%.1f MiB" % mib(med("VmRSS")), med("VmRSS") < 8192))
            targets.append(("%s idle < 8 MiB (RssAnon, own memory)" % d, "%.1f MiB" % mib(med("RssAnon")),
                            med("RssAnon") < 8192))
        w("")
        w("(median of the %d fresh starts of the scenario below)" % len(idle.get("completer", [])))
        w("")
        g = s["gone"]
        if g:
            w("### Running messages whose containers are gone")
            w("")
            w("N messages in `running_corrections` naming containers that do not exist: the completer "
              "inspects each (404), publishes a \"container missing\" error result, the notifier "
              "delivers it to the sink. Fresh daemons for each N (default `PREFETCH=1000`: the "
              "completer holds at most 1,000 at once). One run per N.")
            w("")
            w("| N | jobs/s | completer VmHWM / peak RssAnon MiB | notifier VmHWM / peak RssAnon MiB | "
              "starter VmHWM MiB | CPU µs/job completer | notifier |")
            w("|---|---|---|---|---|---|---|")
            for k in sorted(g, key=int):
                x = g[k]
                m = x["mem"]
                w("| %s | %.0f | %.1f / %.1f | %.1f / %.1f | %.1f | %.0f | %.0f |" % (
                    k, x["per_s"], mib(m["completer"]["VmHWM"]), mib(m["completer"].get("RssAnon", 0)),
                    mib(m["notifier"]["VmHWM"]), mib(m["notifier"].get("RssAnon", 0)),
                    mib(m["starter"]["VmHWM"]), x["cpu_us_per_job"]["completer"],
                    x["cpu_us_per_job"]["notifier"]))
            top = g[max(g, key=int)]["mem"]
            for d in ("completer", "notifier"):
                targets.append(("%s < 16 MiB at %s gone messages (VmHWM)" % (d, max(g, key=int)),
                                "%.1f MiB" % mib(top[d]["VmHWM"]), top[d]["VmHWM"] < 16384))
            w("")
        c = s["created"]
        if c:
            w("### Created-not-started containers")
            w("")
            w("The starter with `DONT_START_CONTAINER=true` creates the containers (create, upload) "
              "and publishes their running messages; the completer tracks every one (an inspect "
              "says `created`; it waits for a start event). Cumulative levels on the same daemons; "
              "memory read once all N are tracked.")
            w("")
            w("| N | containers/s | starter VmRSS / RssAnon MiB | completer VmRSS / RssAnon MiB | "
              "notifier VmRSS MiB | CPU µs/job starter | completer |")
            w("|---|---|---|---|---|---|---|")
            for k in sorted(c, key=int):
                x = c[k]
                m = x["mem"]
                w("| %s | %.1f | %.1f / %.1f | %.1f / %.1f | %.1f | %.0f | %.0f |" % (
                    k, x["per_s"], mib(m["starter"]["VmRSS"]), mib(m["starter"]["RssAnon"]),
                    mib(m["completer"]["VmRSS"]), mib(m["completer"]["RssAnon"]),
                    mib(m["notifier"]["VmRSS"]), x["cpu_us_per_job"]["starter"],
                    x["cpu_us_per_job"]["completer"]))
            top = c[max(c, key=int)]["mem"]
            for d in ("starter", "completer"):
                targets.append(("%s < 16 MiB at %s created containers (VmHWM)" % (d, max(c, key=int)),
                                "%.1f MiB" % mib(top[d]["VmHWM"]), top[d]["VmHWM"] < 16384))
            w("")
        if "bench-memory.png" in made:
            w("![memory](bench-memory.png)")
            w("")
    if "profile" in r:
        pr = r["profile"]
        w("## 5. Where the engine's time goes")
        w("")
        w("`bench/profile.py`: %d containers per way, one at a time, round-robin between the ways "
          "(one round first, not counted), image `%s`, the starter's HostConfig (limits, CapDrop "
          "ALL, no-new-privileges, json-file log). Per container: the wall time of each Engine "
          "API call, and the engine's CPU over it: dockerd, its containerd, the shims, runc and "
          "dockerd's re-execs, all in a %s of their own (the correction's own processes are in "
          "the container's cgroup, not counted). Medians; the engine CPU's min–max in brackets. "
          "Load average %.1f at start, %.1f at end: the wall times carry the machine's load, the "
          "CPU figures much less." % (pr["n"], pr["image"], pr["cpu_source"],
                                      pr.get("load_before", 0), pr.get("load_after", 0)))
        w("")
        w("| way | wall ms | engine CPU ms | create | upload | start | wait | logs | remove |")
        w("|---|---|---|---|---|---|---|---|---|")
        for way, x in pr["ways"].items():
            if "error" in x:
                w("| %s | failed: %s | | | | | | | |" % (way, x["error"][:150].replace("|", "/")))
                continue
            cells = []
            for st in ("create", "upload", "start", "wait", "logs", "remove"):
                y = x["steps"].get(st)
                cells.append("%.0f / %.0f" % (y["wall_ms"], y["cpu_ms"]) if y else "–")
            if "run" in x["steps"]:
                cells = ["(one `docker run --rm`)"] + [""] * 5
            w("| %s | %.0f | **%.0f** (%.0f–%.0f) | %s |" % (
                way, x["wall_ms"], x["cpu_ms"], x["cpu_ms_range"][0], x["cpu_ms_range"][1],
                " | ".join(cells)))
        w("")
        w("Step cells: wall ms / engine CPU ms. `upload`: create, PUT archive, start, wait, logs, "
          "remove (the pipeline's default); `bind`: the file bind-mounted read-only at "
          "/tmp/exercise, no upload (`EXERCISE_MODE=bind`); `cli`: `docker run --rm` with the same "
          "settings and the file bind-mounted (its CPU includes the CLI's extra calls: attach, "
          "inspect, the wait before start); `none`: `NetworkMode=none`; `internal`: a bridge "
          "network created once with `Internal: true` and inter-container traffic off.")
        w("")
        ways = pr["ways"]

        def cpu(k):
            return ways.get(k, {}).get("cpu_ms")
        if cpu("upload/none") and cpu("bind/none"):
            w("- The upload costs the engine %.0f ms of CPU per container (%.0f%% of the whole): "
              "`bind/none` %.0f ms against `upload/none` %.0f ms." % (
                  cpu("upload/none") - cpu("bind/none"),
                  100 * (cpu("upload/none") - cpu("bind/none")) / cpu("upload/none"),
                  cpu("bind/none"), cpu("upload/none")))
        if cpu("bind/none") and cpu("bind/internal"):
            w("- An internal bridge network costs more than `none`, not less: %+.0f ms of engine "
              "CPU per container (a veth pair, a bridge port and addresses at each start)." % (
                  cpu("bind/internal") - cpu("bind/none")))
        if cpu("cli/none") and cpu("bind/none"):
            w("- `docker run --rm` with the same settings: %.0f ms, against %.0f ms for our calls "
              "with the same mount." % (cpu("cli/none"), cpu("bind/none")))
        w("")
    if "modes" in r:
        m = r["modes"]
        w("## 6. The ways into a container, side by side")
        w("")
        w("%d jobs of `ct-ok` per run at %d at once (`MAX_RUNNING` for the pipeline), each way "
          "in turn within a run%s: the engine's own paths with the starter's settings (no network, "
          "the limits) and the pipeline in each `EXERCISE_MODE`. jobs/s.%s" % (
              m["jobs"], m["concurrency"],
              (", forward in odd-numbered runs and backward in even-numbered ones, after an "
               "unrecorded warm-up batch (%.2f jobs/s)" % m["warmup_per_s"])
              if m.get("warmup_per_s") else "",
              " Load average (1, 5, 15 min) at start / end: %s / %s." % (
                  " ".join(m["loadavg"][0]), " ".join(m["loadavg"][1])) if "loadavg" in m else ""))
        w("")
        first = m.get("first_after_s", {})
        w("| way | jobs/s |%s" % (" first callback, s |" if first else ""))
        w("|---|---|%s" % ("---|" if first else ""))
        names = {"docker_run_bind": "`docker run --rm`, file bind-mounted",
                 "baseline_upload": "API baseline, file uploaded",
                 "baseline_bind": "API baseline, file bind-mounted",
                 "pipeline_upload": "pipeline, `EXERCISE_MODE=upload` (default)",
                 "pipeline_bind": "pipeline, `EXERCISE_MODE=bind`",
                 "pipeline_bind_all": "pipeline, `EXERCISE_MODE=bind`, `MAX_STARTING=%d` (after "
                 "a burst's first job, every slot set up at once)" % m["concurrency"],
                 "pipeline_bind_nohold": "pipeline, `EXERCISE_MODE=bind`, `HOLD_JOBS=0` (at "
                 "capacity every job waits in the queue: a freed slot waits for a delivery)",
                 "pipeline_bind_isolated": "pipeline, `EXERCISE_MODE=bind`, "
                 "`CORRECTION_NETWORK=isolated` (on this engine, without a bridge: the engine's "
                 "default mode, loopback only)",
                 "pipeline_bind_metrics": "pipeline, `EXERCISE_MODE=bind`, `METRICS_LISTEN` set "
                 "on each daemon and all three scraped every second"}
        for k, label in names.items():
            if k in m:
                w("| %s | %s |%s" % (label, fmt(m[k], 2), (" %s |" % (
                    fmt(first[k], 2) if k in first else "–")) if first else ""))
        w("")
        report_cpu(m.get("cpu_ms", {}), names, w, targets,
                   {k: m[k]["runs"] for k in names if k in m})
        if "pipeline_bind_metrics" in m and "pipeline_bind" in m:
            pk = m.get("peak_kib", {})
            mem = ""
            if "pipeline_bind" in pk and "pipeline_bind_metrics" in pk:
                mem = "; peak resident memory with metrics minus without, per daemon: %s" % (
                    ", ".join("%s %+d KiB" % (n, pk["pipeline_bind_metrics"][n] -
                                               pk["pipeline_bind"][n])
                              for n in pk["pipeline_bind"]))
            w("Metrics on and scraped every second / metrics off (both bind mode): %.1f%% of the "
              "throughput%s. Targets: at least 98%% and at most 1 MiB more per daemon." % (
                  100 * m["pipeline_bind_metrics"]["median"] / m["pipeline_bind"]["median"], mem))
            w("")
        if all(k in m for k in names if k not in ("pipeline_bind_all", "pipeline_bind_nohold",
                                                   "pipeline_bind_isolated",
                                                   "pipeline_bind_metrics")):
            best_bind = max(m["docker_run_bind"]["median"], m["baseline_bind"]["median"])
            rb = m["pipeline_bind"]["median"] / best_bind
            ru = m["pipeline_upload"]["median"] / m["baseline_upload"]["median"]
            gain = m["pipeline_bind"]["median"] / m["pipeline_upload"]["median"]
            w("Pipeline in bind mode / the fastest engine path with a mount: %.0f%%; pipeline "
              "uploading / the API baseline uploading: %.0f%%; bind mode / upload mode: %.2f×." % (
                  100 * rb, 100 * ru, gain))
            w("")
            pb, bb = m["pipeline_bind"].get("runs", []), m["baseline_bind"].get("runs", [])
            if len(pb) == len(bb) and len(pb) > 1:
                pairs = [p / b for p, b in zip(pb, bb)]
                w("Run by run, pipeline in bind mode / API baseline with a mount: %s (median %.0f%%)."
                  % (", ".join("%.0f%%" % (100 * x) for x in pairs),
                     100 * statistics.median(pairs)))
                w("")
            targets.append(("pipeline (bind) ≥ 95% of the fastest engine path, same settings",
                            "%.0f%%" % (100 * rb), rb >= 0.95))
            targets.append(("pipeline (upload) ≥ 95% of the API baseline uploading",
                            "%.0f%%" % (100 * ru), ru >= 0.95))
        if "pipeline_bind_isolated" in m and "pipeline_bind" in m:
            w("Pipeline in bind mode, `CORRECTION_NETWORK=isolated` / `none`: %.2f×." % (
                m["pipeline_bind_isolated"]["median"] / m["pipeline_bind"]["median"]))
            w("")
        for k, e in m.get("errors", {}).items():
            w("- **%s failed:** %s" % (k, e.replace("|", "/")[:300]))
        if m.get("errors"):
            w("")
    if "original" in r:
        report_original(r["original"], w, targets, "modes" in r)
    for part, err in r.get("errors", {}).items():
        w("**%s did not complete:** %s" % (part, err))
        w("")
    w("## Targets")
    w("")
    w("| target | measured | met |")
    w("|---|---|---|")
    for name, val, ok in targets:
        w("| %s | %s | %s |" % (name, val, "yes" if ok else "**no**"))
    w("")
    notes = os.path.join(ROOT, "bench", "NOTES.md")
    if os.path.exists(notes):
        w(open(notes).read().rstrip())
        w("")
    w("## Commands")
    w("")
    w("The whole run (as root; it installs what is missing, builds `build-bench/`, starts a private "
      "dockerd and RabbitMQ with tests/servers.sh and stops them at the end):")
    w("")
    w("    %s" % cmdline)
    w("")
    w("Options: `--quick` (a smoke pass, a minute or two), `--runs N`, `--jobs N` (throughput jobs "
      "per run; the issue's 500 with `--jobs 500`), "
      "`--only throughput,latency,notifier,scale,profile,modes,original`, `--original DIR` "
      "(a checkout of the original correctomatic, for section 7), `--ways LIST` (some ways of "
      "sections 6 and 7 only), `--cpu-split` (each batch's CPU split by who used it, sections 6 "
      "and 7).")
    w("")
    w("What it ran, in order (daemons started by bench/bench.py with the settings named above):")
    w("")
    seen = []
    for c in r["commands"]:
        if c not in seen:
            seen.append(c)
    for c in seen[:40]:
        w("    " + c)
    if len(seen) > 40:
        w("    ... (%d more, same shape)" % (len(seen) - 40))
    w("")
    with open(os.path.join(docs, "BENCHMARKS.md"), "w") as fh:
        fh.write("\n".join(L))
    return targets


DEFAULT_PARTS = "throughput,latency,notifier,scale,profile,modes"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin")
    ap.add_argument("--out", help="scratch folder (logs)")
    ap.add_argument("--docs", default=os.path.join(ROOT, "docs"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--jobs", type=int)
    ap.add_argument("--only", help="some of %s,original (comma-separated); default all but "
                    "original, and original too with --original or CT_ORIGINAL_DIR" % DEFAULT_PARTS)
    ap.add_argument("--original", metavar="DIR", default=os.environ.get("CT_ORIGINAL_DIR") or None,
                    help="a checkout of the original correctomatic (%s): section 7 compares it "
                    "with the pipeline (default: CT_ORIGINAL_DIR)" % ORIGINAL_REPO)
    ap.add_argument("--ways", help="with modes or original: only these ways (comma-separated "
                    "names, as in docs/bench-results.json), for an A/B of a few")
    ap.add_argument("--cpu-split", action="store_true",
                    help="with modes/original: split each batch's CPU by who used it (the "
                    "engine, the corrections, the broker, our daemons, the client), through "
                    "cpuacct groups of cgroup v1 (CpuSplit)")
    ap.add_argument("--load-timeout", default="600")
    ap.add_argument("--cmdline", default="sudo bench/run.sh")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite docs/BENCHMARKS.md and the plots from docs/bench-results.json")
    ap.add_argument("--merge", metavar="JSON",
                    help="with --report-only: first put this file's parts (the results of a run "
                    "with --only, in --docs of a scratch folder) into docs/bench-results.json")
    a = ap.parse_args()
    if a.report_only:
        with open(os.path.join(a.docs, "bench-results.json")) as f:
            r = json.load(f)
        if a.merge:
            with open(a.merge) as f:
                part = json.load(f)
            for k in ("throughput", "latency", "notifier", "scale", "profile", "modes", "original"):
                if k in part:
                    r[k] = part[k]
                    r.setdefault("partial_runs", []).append(
                        {"part": k, "finished": part.get("finished"),
                         "loadavg": [part.get("facts", {}).get("loadavg_start"),
                                     part.get("facts", {}).get("loadavg_end")]})
            with open(os.path.join(a.docs, "bench-results.json"), "w") as f:
                json.dump(r, f, indent=1)
        # without matplotlib, the plots already in docs/ stay (they are of the same figures)
        made = plots(r, a.docs) or [p for p in ("bench-throughput.png", "bench-memory.png")
                                    if os.path.exists(os.path.join(a.docs, p))]
        report(r, a.docs, made, r["config"].get("cmdline", a.cmdline))
        return
    if a.only is None:
        a.only = DEFAULT_PARTS + (",original" if a.original else "")
    parts = [p.strip() for p in a.only.split(",") if p.strip()]
    for p in parts:
        if p not in DEFAULT_PARTS.split(",") + ["original"]:
            ap.error("--only: unknown part %s" % p)
    if a.original:
        a.original = os.path.abspath(a.original)
    q = a.quick
    a.runs = a.runs or (1 if q else 3)
    a.jobs = a.jobs or (20 if q else 100)
    a.concurrency = [1, 4, 8]
    a.latency_jobs = 5 if q else 30
    a.callbacks = 2000 if q else 20000
    a.gone_levels = [100, 1000] if q else [100, 1000, 10000]
    a.created_levels = [100] if q else [100, 1000]
    os.makedirs(a.docs, exist_ok=True)
    b = Bench(a)
    b.r["facts"] = facts()
    t0 = time.time()
    split = CpuSplit() if a.cpu_split else None
    try:
        for part in parts:
            if part == "original" and "modes" in parts:
                continue  # measured with the modes, in the same round-robin
            try:
                if part == "modes" and "original" in parts:
                    part = "modes+original"
                    b.measure(["modes", "original"])
                else:
                    getattr(b, part)()
            except Exception as e:  # report what ran; say what did not
                log("%s FAILED: %s" % (part, e))
                b.r["errors"][part] = str(e)
                for d in (b.pl.d.values() if b.pl else []):
                    d.stop()
            b.pl = None
    finally:
        if split:
            split.release()
    b.r["finished"] = time.time()
    b.r["facts"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    b.r["wall_s"] = time.time() - t0
    with open(os.path.join(a.docs, "bench-results.json"), "w") as f:
        json.dump(b.r, f, indent=1)
    made = plots(b.r, a.docs)
    targets = report(b.r, a.docs, made, a.cmdline)
    log("done in %.0f s; docs/BENCHMARKS.md written" % b.r["wall_s"])
    for name, val, ok in targets:
        log("  %-55s %-12s %s" % (name, val, "met" if ok else "MISSED"))


if __name__ == "__main__":
    main()
