"""cpuacct.py: cgroup v1 cpuacct groups for the benchmarks' CPU figures (bench.py --cpu-split,
profile.py's engine CPU), and the process tree they put in them."""
import os

ROOT = "/sys/fs/cgroup/cpuacct"


def available():
    return os.path.exists(os.path.join(ROOT, "cgroup.procs"))


def pid_of(path):
    with open(path) as f:
        return int(f.read().strip())


def children(pid):
    """pid's children, as the kernel lists them (every thread's)"""
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def tree(pid):
    """pid and all its descendants"""
    return [pid] + [d for c in children(pid) for d in tree(c)]


def make(name):
    """The group ROOT/name (made when missing); its folder."""
    path = os.path.join(ROOT, name)
    os.makedirs(path, exist_ok=True)
    return path


def join(path, pid):
    """Moves pid (all its threads) into the group at path; its children born later stay there."""
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(pid))


def usage_s(path):
    """The group's CPU so far, in seconds."""
    with open(os.path.join(path, "cpuacct.usage")) as f:
        return int(f.read()) / 1e9


def release(path):
    """Every process of the group back in the root group, then the group removed. OSError when
    it cannot be removed."""
    with open(os.path.join(path, "cgroup.procs")) as f:
        pids = f.read().split()
    for pid in pids:
        try:
            join(ROOT, pid)
        except OSError:
            pass  # gone meanwhile
    os.rmdir(path)
