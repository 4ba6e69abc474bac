#!/usr/bin/env python3
"""monitoring_check.py: checks compose/monitoring/ against what the daemons really export.

    tests/monitoring_check.py --metrics starter.txt --metrics completer.txt --metrics notifier.txt
    tests/monitoring_check.py --self-test

Each --metrics FILE is the raw text of a GET /metrics scrape (Prometheus text format); the names
of all the files given are united (one scrape per daemon). Known names come from the `# TYPE`
lines (a histogram x provides x_bucket, x_sum and x_count; a summary x, x_sum and x_count; a
counter is written with its _total suffix, as the daemons do) and from the sample lines;
`up` and Prometheus' other synthetic scrape series are always known.

Checks, each failure printed on a line of its own, exit status 1 if any:
  - every metric name in every `expr` of every panel target of the Grafana dashboards
    (compose/monitoring/grafana/dashboards/*.json) and of the alerting rules
    (compose/monitoring/alerts.yml; `expr:` lines, `expr: |` blocks too) is known; names are
    the identifiers correctomatic_*, process_* and up, outside string literals and comments
  - the dashboards name the data source by the uid of the provisioned one
  - every alerting rule has a severity label and summary and description annotations
  - prometheus.yml: parsed when PyYAML is there (jobs starter, completer, notifier, the rules
    file); without it, a few textual checks
  - with promtool on PATH (--no-promtool to skip): promtool check config prometheus.yml (its
    rule_files entry, alerts.yml, is relative to it and sits beside it, as it does in the
    container's /etc/prometheus/), promtool check rules alerts.yml, and the PromQL syntax of the
    dashboard expressions (as recording rules of a temporary rules file)

--self-test checks the checker: a fake dashboard and rules file using correctomatic_no_such_metric
against a tiny fake scrape must fail, and a clean pair must pass. Python 3 standard library only.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MONITORING = os.path.join(ROOT, "compose", "monitoring")

# series Prometheus writes itself for every target
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
             "scrape_samples_post_metric_relabeling", "scrape_series_added"}
NAME_RE = re.compile(r"(?<![A-Za-z0-9_:])(correctomatic_[a-z_]+|process_[a-z_]+|up)(?![A-Za-z0-9_:])")


# ---- the scrape ---------------------------------------------------------------------------------

def known_names(text):
    """The series names a scrape provides."""
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                name, kind = parts[2], parts[3]
                if kind == "histogram":
                    names.update(name + s for s in ("_bucket", "_sum", "_count"))
                elif kind == "gaugehistogram":
                    names.update(name + s for s in ("_bucket", "_gsum", "_gcount"))
                elif kind == "summary":
                    names.update(name + s for s in ("", "_sum", "_count"))
                elif kind == "counter" and not name.endswith("_total"):
                    # OpenMetrics style: the TYPE line without the suffix the samples carry
                    names.update((name, name + "_total"))
                else:
                    names.add(name)
            continue
        m = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line)
        if m:
            names.add(m.group(0))
    return names


# ---- PromQL ------------------------------------------------------------------------------------

def strip_strings_and_comments(expr):
    """expr with its string literals emptied and its # comments removed."""
    out, i, n = [], 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            j = i + 1
            while j < n and expr[j] != c:
                j += 2 if expr[j] == "\\" and c != "`" else 1
            out.append(c + c)
            i = j + 1
        elif c == "#":
            while i < n and expr[i] != "\n":
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def metric_names(expr):
    return set(NAME_RE.findall(strip_strings_and_comments(expr)))


# ---- the files ---------------------------------------------------------------------------------

def dashboard_exprs(path):
    """[(where, expr)] of every panel target (rows' nested panels too), and the data source uids
    the dashboard names."""
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    exprs, uids = [], set()

    def ds_uid(ds):
        if isinstance(ds, dict) and ds.get("uid") and ds.get("type") == "prometheus":
            uids.add(ds["uid"])

    def walk(panels):
        for p in panels or []:
            ds_uid(p.get("datasource"))
            for t in p.get("targets") or []:
                ds_uid(t.get("datasource"))
                if t.get("expr"):
                    exprs.append(("%s: panel %r, target %s" % (os.path.basename(path),
                                                               p.get("title", "?"),
                                                               t.get("refId", "?")), t["expr"]))
            walk(p.get("panels"))

    walk(dash.get("panels"))
    for v in (dash.get("templating") or {}).get("list") or []:
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query" and isinstance(q, str) and q:
            exprs.append(("%s: variable %r" % (os.path.basename(path), v.get("name")), q))
    return exprs, uids


def _indent(line):
    return len(line) - len(line.lstrip(" "))


def _unquote(value):
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return json.loads(value) if "\\" in value else value[1:-1]
    return value


def rules_exprs(path):
    """[(where, expr)] of the `expr:` keys of a rules file, read line by line: a plain or quoted
    value, its continuation lines, or a block scalar (|, >, with - or +)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    out, i = [], 0
    key_re = re.compile(r"^(\s*(?:-\s+)?)expr:(?:\s+(.*?))?\s*$")
    while i < len(lines):
        m = key_re.match(lines[i])
        if not m:
            i += 1
            continue
        start, indent = i + 1, len(m.group(1))
        value = m.group(2) or ""
        if value.startswith("#"):
            value = ""
        body, i = [], i + 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():
            body.pop()
        if re.match(r"^[|>][-+0-9]*(\s+#.*)?$", value):
            if body:
                cut = min(_indent(l) for l in body if l.strip())
                body = [l[cut:] for l in body]
            expr = "\n".join(body) if value[0] == "|" else " ".join(l.strip() for l in body)
        else:
            if value and value[0] not in "'\"":
                value = re.sub(r"\s+#.*$", "", value)
            expr = _unquote(" ".join([value] + [l.strip() for l in body]).strip())
        out.append(("%s:%d" % (os.path.basename(path), start), expr))
    return out


def rules_annotations_problems(path):
    """Alerting rules without a severity label or a summary or description annotation."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    problems = []
    chunks = re.split(r"(?m)^\s*-\s+(?=alert:|record:)", text)[1:]
    for chunk in chunks:
        m = re.match(r"alert:\s*(\S+)", chunk)
        if not m:
            continue
        for key in ("severity", "summary", "description"):
            if not re.search(r"(?m)(^\s+|[{,]\s*)%s:" % key, chunk):
                problems.append("%s: alert %s has no %s" % (os.path.basename(path), m.group(1), key))
    return problems


def provisioned_uids(directory):
    uids = set()
    for path in glob.glob(os.path.join(directory, "*.y*ml")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = re.match(r"^\s*(?:-\s+)?uid:\s*['\"]?([^'\"\s#]+)", line)
                if m:
                    uids.add(m.group(1))
    return uids


def prometheus_config_problems(path, rules_path):
    problems = []
    try:
        import yaml  # optional: never required
    except ImportError:
        yaml = None
    with open(path, encoding="utf-8") as f:
        text = f.read()
    rules_name = os.path.relpath(rules_path, os.path.dirname(path))
    if yaml is None:
        print("note: no PyYAML, %s checked as text only" % os.path.basename(path))
        if "\t" in text:
            problems.append("%s: a tab character (YAML indents with spaces)" % path)
        for job in ("starter", "completer", "notifier"):
            if not re.search(r"(?m)^\s*-\s+job_name:\s*['\"]?%s['\"]?\s*$" % job, text):
                problems.append("%s: no scrape job %s" % (path, job))
        if not re.search(r"(?m)^\s*-\s+['\"]?%s['\"]?\s*$" % re.escape(rules_name), text):
            problems.append("%s: rule_files does not name %s" % (path, rules_name))
        return problems
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return ["%s: not valid YAML: %s" % (path, e)]
    jobs = {j.get("job_name"): j for j in cfg.get("scrape_configs") or []}
    for job in ("starter", "completer", "notifier"):
        if job not in jobs:
            problems.append("%s: no scrape job %s" % (path, job))
            continue
        targets = [t for sc in jobs[job].get("static_configs") or [] for t in sc.get("targets") or []]
        if "%s:9100" % job not in targets:
            problems.append("%s: job %s does not scrape %s:9100" % (path, job, job))
    if rules_name not in (cfg.get("rule_files") or []):
        problems.append("%s: rule_files does not name %s" % (path, rules_name))
    return problems


# ---- promtool ----------------------------------------------------------------------------------

def run(cmd, cwd=None):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    return p.returncode, p.stdout.strip()


def promtool_problems(promtool, prom_path, rules_path, exprs):
    problems = []
    # rule_files is relative to the configuration: run it where both files are
    code, out = run([promtool, "check", "config", os.path.basename(prom_path)],
                    cwd=os.path.dirname(prom_path))
    if code:
        problems.append("promtool check config %s:\n%s" % (prom_path, out))
    code, out = run([promtool, "check", "rules", rules_path])
    if code:
        problems.append("promtool check rules %s:\n%s" % (rules_path, out))
    return problems + promtool_expr_problems(promtool, exprs)


def promtool_expr_problems(promtool, exprs):
    problems = []
    if exprs:
        # the dashboard expressions as recording rules: promtool parses their PromQL
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "dashboard_exprs.yml")
            with open(path, "w", encoding="utf-8") as f:
                f.write("groups:\n  - name: dashboard\n    rules:\n")
                for n, (_, expr) in enumerate(exprs):
                    f.write("      - record: dashboard:expr_%d\n        expr: |\n" % n)
                    for line in expr.splitlines() or [""]:
                        f.write("          %s\n" % line)
            code, out = run([promtool, "check", "rules", path])
            if code:
                where = "\n".join("  dashboard:expr_%d = %s" % (n, w) for n, (w, _) in enumerate(exprs))
                problems.append("PromQL of the dashboard expressions:\n%s\n%s" % (out, where))
    return problems


# ---- the check ---------------------------------------------------------------------------------

def unknown_names(exprs, known):
    problems = []
    for where, expr in exprs:
        for name in sorted(metric_names(expr) - known - SYNTHETIC):
            problems.append("unknown metric %s in %s" % (name, where))
    return problems


def check(scrapes, dashboards, rules_path, prom_path, datasources_dir, promtool):
    known = set()
    for path in scrapes:
        with open(path, encoding="utf-8") as f:
            names = known_names(f.read())
        if not names:
            return ["%s: no metric in it (not a /metrics scrape?)" % path]
        known |= names
    problems, dash_exprs, uids = [], [], set()
    if not dashboards:
        problems.append("no dashboard found")
    for path in dashboards:
        try:
            e, u = dashboard_exprs(path)
        except (OSError, ValueError) as err:
            problems.append("%s: %s" % (path, err))
            continue
        if not e:
            problems.append("%s: no panel expression found" % path)
        dash_exprs += e
        uids |= u
    rule_exprs = rules_exprs(rules_path)
    if not rule_exprs:
        problems.append("%s: no expr found" % rules_path)
    problems += unknown_names(dash_exprs + rule_exprs, known)
    problems += rules_annotations_problems(rules_path)
    if datasources_dir:
        provisioned = provisioned_uids(datasources_dir)
        for uid in sorted(uids - provisioned):
            problems.append("the dashboards name data source uid %r, not provisioned in %s (%s)"
                            % (uid, datasources_dir, ", ".join(sorted(provisioned)) or "none"))
    if prom_path:
        problems += prometheus_config_problems(prom_path, rules_path)
    if promtool:
        problems += promtool_problems(promtool, prom_path, rules_path, dash_exprs)
    print("checked %d dashboard and %d rule expressions against %d known names%s"
          % (len(dash_exprs), len(rule_exprs), len(known),
             ", with " + promtool if promtool else " (no promtool)"))
    return problems


# ---- the self-test -----------------------------------------------------------------------------

FAKE_SCRAPE = """\
# HELP correctomatic_jobs_taken_total Jobs taken.
# TYPE correctomatic_jobs_taken_total counter
correctomatic_jobs_taken_total 3
# HELP correctomatic_queue_wait_seconds Queue wait.
# TYPE correctomatic_queue_wait_seconds histogram
correctomatic_queue_wait_seconds_bucket{le="+Inf"} 0
correctomatic_queue_wait_seconds_sum 0
correctomatic_queue_wait_seconds_count 0
# HELP correctomatic_callbacks_parked_total Parked (no series yet).
# TYPE correctomatic_callbacks_parked_total counter
process_open_fds 7
"""

GOOD_EXPRS = [
    'sum(rate(correctomatic_jobs_taken_total{queue="correctomatic_no_such_metric"}[5m]))',
    "histogram_quantile(0.95, sum by (le) (rate(correctomatic_queue_wait_seconds_bucket[5m])))",
    "up == 0 # correctomatic_no_such_metric in a comment",
    "increase(correctomatic_callbacks_parked_total[15m]) > 0 and process_open_fds > 0",
]


def _fake_rules(exprs, extra=""):
    text = "groups:\n  - name: fake\n    rules:\n"
    for n, e in enumerate(exprs):
        text += ("      - alert: Fake%d\n        expr: |\n%s\n        labels:\n"
                 "          severity: warning\n        annotations:\n"
                 "          summary: s\n          description: d\n"
                 % (n, "\n".join("          " + l for l in e.splitlines())))
    return text + extra


def _fake_dashboard(exprs, uid="fake-uid"):
    ds = {"type": "prometheus", "uid": uid}
    return {"panels": [{"type": "row", "title": "r", "panels": []},
                       {"type": "timeseries", "title": "p", "datasource": ds,
                        "targets": [{"refId": chr(65 + n), "datasource": ds, "expr": e}
                                    for n, e in enumerate(exprs)]}]}


def self_test(promtool):
    failures = []

    def expect(label, cond):
        print("self-test: %-62s %s" % (label, "ok" if cond else "FAILED"))
        if not cond:
            failures.append(label)

    with tempfile.TemporaryDirectory() as tmp:
        scrape = os.path.join(tmp, "scrape.txt")
        with open(scrape, "w") as f:
            f.write(FAKE_SCRAPE)
        known = known_names(FAKE_SCRAPE)
        expect("histogram x gives x_bucket, not x",
               "correctomatic_queue_wait_seconds_bucket" in known
               and "correctomatic_queue_wait_seconds" not in known)
        expect("a counter TYPE line without series is known",
               "correctomatic_callbacks_parked_total" in known)
        expect("names in strings and comments are ignored",
               metric_names(GOOD_EXPRS[0] + "\n" + GOOD_EXPRS[2])
               == {"correctomatic_jobs_taken_total", "up"})

        prov = os.path.join(tmp, "datasources")
        os.mkdir(prov)
        with open(os.path.join(prov, "ds.yml"), "w") as f:
            f.write("apiVersion: 1\ndatasources:\n  - name: P\n    uid: fake-uid\n")

        def case(name, dash_exprs, rule_exprs, rules_extra="", uid="fake-uid"):
            d = os.path.join(tmp, name)
            os.mkdir(d)
            dash = os.path.join(d, "dash.json")
            with open(dash, "w") as f:
                json.dump(_fake_dashboard(dash_exprs, uid), f)
            rules = os.path.join(d, "alerts.yml")
            with open(rules, "w") as f:
                f.write(_fake_rules(rule_exprs, rules_extra))
            return check([scrape], [dash], rules, None, prov, None)

        ok = case("clean", GOOD_EXPRS, GOOD_EXPRS)
        expect("known names only: passes", ok == [])
        for p in ok:
            print("  " + p)

        bad = case("dashboard", ["rate(correctomatic_no_such_metric[5m]) + correctomatic_jobs_taken_total"],
                   GOOD_EXPRS)
        expect("unknown name in a dashboard: fails, naming it",
               len(bad) == 1 and "correctomatic_no_such_metric" in bad[0])

        bare = case("bare_histogram", ["correctomatic_queue_wait_seconds"], GOOD_EXPRS)
        expect("a histogram's bare name: fails", len(bare) == 1)

        styles = ("      - alert: Quoted\n        expr: 'correctomatic_no_such_metric == 0'\n"
                  "        labels: {severity: warning}\n"
                  "        annotations: {summary: s, description: d}\n"
                  "      - alert: Folded\n        expr: >-\n          sum(process_open_fds)\n"
                  "          > correctomatic_no_such_metric_either\n"
                  "        labels: {severity: warning}\n"
                  "        annotations: {summary: s, description: d}\n"
                  "      - alert: Plain\n        expr: process_open_fds\n"
                  "          > correctomatic_no_such_metric_plain\n"
                  "        labels: {severity: warning}\n"
                  "        annotations: {summary: s, description: d}\n")
        rules = case("rules", GOOD_EXPRS,
                     GOOD_EXPRS + ["process_open_fds\n  > on () correctomatic_no_such_metric_block"],
                     styles)
        found = {re.search(r"unknown metric (\S+)", p).group(1) for p in rules if "unknown metric" in p}
        expect("unknown names in |, >-, quoted and plain rule exprs: fail",
               found == {"correctomatic_no_such_metric", "correctomatic_no_such_metric_either",
                         "correctomatic_no_such_metric_plain",
                         "correctomatic_no_such_metric_block"} and len(rules) == 4)

        nosev = case("annotations", GOOD_EXPRS, GOOD_EXPRS,
                     "      - alert: Bare\n        expr: up == 0\n")
        expect("an alert without severity, summary, description: fails", len(nosev) == 3)

        uid = case("uid", GOOD_EXPRS, GOOD_EXPRS, uid="other-uid")
        expect("a data source uid not provisioned: fails", len(uid) == 1 and "other-uid" in uid[0])

        if promtool:
            good = promtool_expr_problems(promtool, [("x", e) for e in GOOD_EXPRS])
            expect("promtool: valid dashboard PromQL passes", good == [])
            bad = promtool_expr_problems(promtool, [("x", "sum(rate(correctomatic_jobs_taken_total[5m])")])
            expect("promtool: a PromQL syntax error in the dashboard fails", len(bad) == 1)
    if failures:
        print("self-test FAILED: %s" % "; ".join(failures))
        return 1
    print("self-test passed")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics", action="append", default=[], metavar="FILE",
                    help="a /metrics scrape (repeat: one per daemon)")
    ap.add_argument("--self-test", action="store_true", help="check that the checker fails")
    ap.add_argument("--monitoring-dir", default=MONITORING,
                    help="the compose/monitoring/ folder (default: this repository's)")
    ap.add_argument("--no-promtool", action="store_true", help="skip the promtool checks")
    args = ap.parse_args()
    promtool = None if args.no_promtool else shutil.which("promtool")
    if args.self_test:
        return self_test(promtool)
    if not args.metrics:
        ap.error("at least one --metrics FILE (or --self-test)")
    mon = args.monitoring_dir
    try:
        problems = check(args.metrics,
                         sorted(glob.glob(os.path.join(mon, "grafana", "dashboards", "*.json"))),
                         os.path.join(mon, "alerts.yml"), os.path.join(mon, "prometheus.yml"),
                         os.path.join(mon, "grafana", "provisioning", "datasources"), promtool)
    except OSError as e:
        problems = [str(e)]
    for p in problems:
        print("FAIL: " + p)
    if problems:
        return 1
    print("monitoring check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
