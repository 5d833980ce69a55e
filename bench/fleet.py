#!/usr/bin/env python3
"""fleet.py: errqd replicas on one PostgreSQL database next to SQLite, and the rule engine's
leader failover (issue 17, "Tests and figures"; `make bench-fleet`; docs/benchmarks.md).

  bench/fleet.py [--build DIR] [--errqd PATH] [options]      (--help lists them)

Ingest.  For each load (--loads: u50 = 50 groups drawn uniformly, z50k = 50 000 groups with a
Zipf(1.1) popularity, errq-bench's default) and each of --runs runs, every configuration in
turn (so that a drift of the machine hits all of them alike):
  sqlite  one errqd on a fresh SQLite file (durability normal);
  pgN     N errqd replicas (--replicas, default 1,2,3) on one fresh database of a private
          PostgreSQL server (tests/support/pg-server), each with its own `name:` and the same
          rules (--rules).
Every errqd runs with --listen 127.0.0.1:0 --port-file --http-listen 127.0.0.1:0.  One errq-bench
per replica, in parallel (--addr, --pid), the same total (--streams split across the replicas,
--duration, --warmup) for every configuration.  Figures of a run:
  - acknowledged events/s, summed over the replicas' loaders; ack p99, the worst loader's;
  - CPU (user+system) per event of each errqd and of the PostgreSQL server (every process of
    its cluster: the postmaster, its live children, and what its reaped children used), all
    read from /proc/PID/stat over the same window, inside every loader's measured window: the
    window's CPU over the events committed in it (each replica's errq_events_accepted_total and
    errq_events_duplicate_total at both ends);
    an errqd's per event is over the events it ingested, PostgreSQL's and the total over all;
  - the ratio of events/s to the SQLite run of the same round.
Each figure is the median of the runs (min-max with more than one).

Failover.  Three replicas on one database with one rule; the leader is the replica whose
/metrics says errq_fleet_leader 1 (checked against the table errq_leader through psql).  Each
of --failover-runs rounds SIGKILLs the leader and polls the others' /metrics every 20 ms until
one says errq_fleet_leader 1 under a newer epoch: the failover time; the killed replica is then
started again (a follower) before the next round.  It needs an errqd with the fleet leader
(errq_fleet_leader in /metrics): with one without it the failover part says so and is skipped.

The machine is shared: on a 2-core box the replicas, PostgreSQL and the loaders all run on the
same two cores, so events/s does not scale with replicas here; CPU per event is the figure that
extrapolates to replicas on machines of their own.  The private server runs with fsync=off and
synchronous_commit=off (tests/support/pg-server); --pg-set changes settings that a reload
applies (e.g. --pg-set synchronous_commit=on --pg-set fsync=on for a durable comparison, with
--sqlite-durability full).

Exit: 0 when every run and failover round worked, 1 when one failed (its figures are marked),
2 on a usage error or when nothing could run.  Ctrl-C stops everything it started (errqd,
errq-bench, the PostgreSQL server) and removes its files.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_WAIT_S = 60      # an errqd's port file, the server's start
STOP_WAIT_S = 30       # an errqd's exit after SIGTERM, before SIGKILL
LEADER_WAIT_S = 60     # a leader elected; a failover (~1 s expected: FLEET_POLL_MS)
POLL_S = 0.020         # the failover's poll of /metrics
HTTP_TIMEOUT_S = 2.0
LOADER_SLACK_S = 120   # a loader's end past its duration and warm-up
LOG_TAIL = 2000        # bytes of an errqd's log shown when it fails
LOADS = {
    "u50": ["--groups", "50", "--zipf", "0"],
    "z50k": ["--groups", "50000", "--zipf", "1.1"],
}
LOAD_TEXT = {"u50": "50 groups, uniform", "z50k": "50 000 groups, Zipf(1.1)"}
# one rule that watches every event of errq-bench (16 services) but never trips in a run: the
# matching and, on a fleet, its per-(rule, key, second) increments are part of the cost
BENCH_RULES = """rules:
  - name: bench-watch
    match: {service: "bench-svc-*"}
    group_by: [service]
    trip: {failures: 1000000, window: 1s}
"""
CLK_TCK = os.sysconf("SC_CLK_TCK")
FLEET_GAUGES = ("errq_fleet_leader", "errq_fleet_epoch", "errq_fleet_session_up")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never http_proxy for 127.0.0.1


class BenchError(Exception):
    pass


class NoFleet(BenchError):
    """The errqd measured has no fleet leader: the failover is skipped, not failed."""


def log(msg):
    print("fleet: " + msg, flush=True)


def parse_duration(s):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", s)
    if not m:
        raise argparse.ArgumentTypeError("'%s' is not a duration (e.g. 10s, 500ms, 2m)" % s)
    v = float(m.group(1))
    return v / 1000.0 if m.group(2) == "ms" else v * 60.0 if m.group(2) == "m" else v


def median_range(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


# ---- /proc ----

def proc_stat(pid):
    """(ppid, utime+stime, cutime+cstime) in ticks, or None when the process is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rfind(")") + 2:].split()  # comm may hold spaces and parentheses
    # rest[0] is field 3 (state): field F is rest[F - 3]
    return int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[13]) + int(rest[14])


def proc_cpu_s(pid):
    st = proc_stat(pid)
    return None if st is None else st[1] / CLK_TCK


def cluster_cpu_s(postmaster):
    """CPU seconds of a PostgreSQL cluster: the postmaster, every live child (backends, the
    writers, autovacuum) and, through its cutime, the children it reaped (a child counted live
    at one sample and reaped by the next is counted once either way)."""
    pm = proc_stat(postmaster)
    if pm is None:
        raise BenchError("the PostgreSQL server (postmaster %d) is gone" % postmaster)
    ticks = pm[1] + pm[2]
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st[0] == postmaster:
            ticks += st[1]
    return ticks / CLK_TCK


def committed(r):
    """Events an errqd committed so far (accepted + duplicates, as acknowledged), or None."""
    m = r.metrics(("errq_events_accepted_total", "errq_events_duplicate_total"))
    if not m or "errq_events_accepted_total" not in m:
        return None
    return m["errq_events_accepted_total"] + m.get("errq_events_duplicate_total", 0)


# ---- the PostgreSQL server ----

class PgServer:
    def __init__(self, script, dir_):
        self.script, self.dir, self.url, self.postmaster = script, dir_, None, None

    def start(self):
        r = subprocess.run([self.script, "start", self.dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=START_WAIT_S * 3)
        if r.returncode != 0:
            raise BenchError("pg-server start failed: %s" % r.stderr.strip())
        self.url = r.stdout.strip().splitlines()[-1]
        home = self.dir
        if os.path.exists(os.path.join(self.dir, "home")):
            with open(os.path.join(self.dir, "home")) as f:
                home = f.read().strip()
        with open(os.path.join(home, "data", "postmaster.pid")) as f:
            self.postmaster = int(f.readline())

    def stop(self):
        r = subprocess.run([self.script, "stop", self.dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=STOP_WAIT_S * 5)
        if r.returncode != 0:
            log("warning: pg-server stop failed: %s" % r.stderr.strip())

    def db_url(self, db):
        return self.url.rsplit("/", 1)[0] + "/" + db

    def sql(self, sql, db="postgres"):
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.db_url(db), "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        if r.returncode != 0:
            raise BenchError("psql: %s: %s" % (sql, r.stderr.strip()))
        return r.stdout.strip()

    def set(self, kv):
        key, _, val = kv.partition("=")
        if not re.fullmatch(r"[a-z_]+", key) or not val:
            raise BenchError("--pg-set '%s': KEY=VALUE with a PostgreSQL setting's name" % kv)
        self.sql("ALTER SYSTEM SET %s = '%s'" % (key, val.replace("'", "''")))
        self.sql("SELECT pg_reload_conf()")
        time.sleep(0.5)  # the postmaster signals its children; a new session reads the file
        if self.sql("SELECT pending_restart FROM pg_settings WHERE name = '%s'" % key) == "t":
            raise BenchError("--pg-set '%s': the setting needs a restart of the server, which this script does not do" % kv)

    def settings(self):
        names = ["fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "wal_level", "max_connections"]
        out = self.sql("SELECT name || '=' || setting || coalesce(unit, '') FROM pg_settings WHERE name IN (%s) ORDER BY name"
                       % ", ".join("'%s'" % n for n in names))
        return dict(line.split("=", 1) for line in out.splitlines())


# ---- errqd ----

class Errqd:
    """One errqd: its config (name, rules), log and port file in dir."""

    def __init__(self, binary, dir_, name, db, rules, extra):
        self.binary, self.dir, self.name, self.db, self.extra = binary, dir_, name, db, extra
        os.makedirs(dir_, exist_ok=True)
        self.cfg = os.path.join(dir_, "errqd.yaml")
        with open(self.cfg, "w") as f:
            f.write("name: %s\n%s" % (name, rules))
        self.portfile = os.path.join(dir_, "port")
        self.logpath = os.path.join(dir_, "errqd.log")
        self.proc, self.port, self.http_port = None, None, None

    def start(self):
        for p in (self.portfile, self.portfile + ".tmp"):
            if os.path.exists(p):
                os.unlink(p)
        logf = open(self.logpath, "a")
        try:
            self.proc = subprocess.Popen([self.binary, "--listen", "127.0.0.1:0", "--port-file", self.portfile,
                                          "--http-listen", "127.0.0.1:0", "--db", self.db, "--config", self.cfg]
                                         + self.extra, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)  # a ^C reaches this script only
        finally:
            logf.close()

    def wait_ready(self):
        deadline = time.monotonic() + START_WAIT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("errqd %s exited with %d at start:\n%s" % (self.name, self.proc.returncode, self.log_tail()))
            try:
                with open(self.portfile) as f:
                    lines = f.read().split()
                if len(lines) >= 2:
                    self.port, self.http_port = int(lines[0]), int(lines[1])
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise BenchError("errqd %s wrote no port file in %d s:\n%s" % (self.name, START_WAIT_S, self.log_tail()))

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_WAIT_S; the exit status (None: it was not running)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                log("warning: errqd %s did not stop in %d s: SIGKILL" % (self.name, STOP_WAIT_S))
                self.proc.kill()
                self.proc.wait()
        rc, self.proc = self.proc.returncode, None
        return rc

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def metrics(self, names=FLEET_GAUGES):
        """{name: value} of the metrics of names that /metrics has (unlabelled ones), or None
        when the request failed."""
        try:
            with NO_PROXY.open("http://127.0.0.1:%d/metrics" % self.http_port, timeout=HTTP_TIMEOUT_S) as r:
                text = r.read().decode("utf-8", "replace")
        except (OSError, urllib.error.URLError):
            return None
        out = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in names:
                out[parts[0]] = int(float(parts[1]))
        return out

    def log_tail(self):
        try:
            with open(self.logpath, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - LOG_TAIL))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"


# ---- the benchmark ----

class Bench:
    def __init__(self, a):
        self.a = a
        self.work = tempfile.mkdtemp(prefix="errq-fleet-")
        self.pg = None
        self.servers = []   # every Errqd started, stopped at the end
        self.loaders = []   # every errq-bench running
        self.failed = 0
        self.seq = 0

    # -- life cycle --

    def cleanup(self):
        for p in self.loaders:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.loaders = []
        for s in self.servers:
            s.stop()
        self.servers = []
        if self.pg:
            self.pg.stop()
        if self.a.keep:
            log("kept %s" % self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    def start_pg(self):
        self.pg = PgServer(self.a.pg_server, os.path.join(self.work, "pg"))
        self.pg.start()
        for kv in self.a.pg_set:
            self.pg.set(kv)
        self.pg_settings = self.pg.settings()
        log("PostgreSQL %s at %s, postmaster %d; %s" % (
            self.pg.sql("SHOW server_version"), self.pg.url, self.pg.postmaster,
            ", ".join("%s=%s" % kv for kv in sorted(self.pg_settings.items()))))

    def new_db(self, label):
        self.seq += 1
        db = "bench_%s_%d" % (re.sub(r"[^a-z0-9]", "_", label), self.seq)
        self.pg.sql("CREATE DATABASE %s" % db)
        return db

    def drop_db(self, db):
        try:
            self.pg.sql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
        except BenchError as e:
            log("warning: %s" % e)

    def start_replicas(self, label, n, db_for, extra=()):
        """n errqd on the database db_for(dir) gives, started together and ready; on a failure
        the ones started are stopped."""
        reps = []
        for i in range(n):
            d = os.path.join(self.work, "%s-%d-r%d" % (label, self.seq, i))
            reps.append(Errqd(self.a.errqd, d, "bench-%d" % i, db_for(d), self.a.rules_text, list(extra)))
        try:
            for r in reps:
                self.servers.append(r)
                r.start()
            for r in reps:
                r.wait_ready()
        except BaseException:
            self.stop_replicas(reps)
            raise
        return reps

    def stop_replicas(self, reps):
        bad = []
        for r in reps:
            rc = r.stop()
            if r in self.servers:
                self.servers.remove(r)
            if rc not in (0, None):
                bad.append("errqd %s exited with %s:\n%s" % (r.name, rc, r.log_tail()))
        return bad

    # -- ingest --

    def one_run(self, kind, n, load):
        """One configuration once: its figures (a dict), errors listed in 'errors'."""
        a = self.a
        label = "sqlite" if kind == "sqlite" else "pg%d" % n
        db = None
        if kind == "sqlite":
            reps = self.start_replicas(label, 1, lambda d: os.path.join(d, "errq.db"),
                                       ["--durability", a.sqlite_durability])
        else:
            db = self.new_db(label)
            url = self.pg.db_url(db)
            try:
                reps = self.start_replicas(label, n, lambda d: url)
            except BaseException:
                self.drop_db(db)
                raise
        res = {"config": label, "replicas": n, "errors": [], "notes": []}
        try:
            streams = [a.streams // n + (1 if i < a.streams % n else 0) for i in range(n)]
            procs = []
            for i, r in enumerate(reps):
                cmd = [a.bench, "--addr", "127.0.0.1:%d" % r.port, "--pid", str(r.pid), "--streams", str(streams[i]),
                       "--duration", a.duration_text, "--warmup", a.warmup_text, "--seed", str(i + 1), "--json"]
                cmd += LOADS[load] + a.bench_arg
                p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
                procs.append(p)
                self.loaders.append(p)
            t0 = time.monotonic()
            # the CPU window: inside every loader's measured window (it starts after its warm-up,
            # a few ms after its launch), shrunk by a margin at both ends
            margin = min(0.5, a.duration / 10)
            w0, w1 = t0 + a.warmup + margin, t0 + a.warmup + a.duration - margin
            time.sleep(max(0.0, w0 - time.monotonic()))
            m0 = time.monotonic()
            e0 = [committed(r) for r in reps]
            c0 = [proc_cpu_s(r.pid) for r in reps]
            p0 = cluster_cpu_s(self.pg.postmaster) if kind != "sqlite" else None
            time.sleep(max(0.0, w1 - time.monotonic()))
            e1 = [committed(r) for r in reps]
            c1 = [proc_cpu_s(r.pid) for r in reps]
            p1 = cluster_cpu_s(self.pg.postmaster) if kind != "sqlite" else None
            window = time.monotonic() - m0
            outs = []
            # ingest transactions that failed (deadlocks between replicas, lock timeouts: retried,
            # nothing acknowledged before its commit) over the whole run, warm-up included
            res["store_errors_each"] = [(r.metrics(("errq_store_errors_total",)) or {}).get("errq_store_errors_total")
                                        for r in reps]
            for i, p in enumerate(procs):
                try:
                    out, err = p.communicate(timeout=a.warmup + a.duration + LOADER_SLACK_S)
                except subprocess.TimeoutExpired:
                    p.kill()
                    out, err = p.communicate()
                    res["errors"].append("errq-bench for %s did not finish" % reps[i].name)
                self.loaders.remove(p)
                try:
                    j = json.loads(out)
                except ValueError:
                    j = None
                if j is None or "events_per_s" not in j:
                    res["errors"].append("errq-bench for %s exited with %d: %s" % (reps[i].name, p.returncode, err.strip()[-500:]))
                    j = {}
                elif p.returncode != 0 or j.get("errors", {}).get("errors_total", 0):
                    e = j.get("errors", {})
                    res["errors"].append("errq-bench for %s: exit %d, %s" % (reps[i].name, p.returncode, ", ".join(
                        "%s %s" % (k, v) for k, v in e.items() if v)))
                outs.append(j)
            rates = [j.get("events_per_s", 0.0) for j in outs]
            total = sum(rates)
            res["events_per_s"] = total
            res["events_per_s_each"] = rates
            p99s = [j["latency"]["p99_ms"] for j in outs if "latency" in j]
            res["p99_ms"] = max(p99s) if p99s else None
            res["p99_ms_each"] = p99s
            res["window_s"] = window
            cpu = [None if x is None or y is None else y - x for x, y in zip(c0, c1)]
            res["errqd_cpu_s_each"] = cpu
            # the events each replica committed in the window (its counters; the loader's rate
            # times the window when /metrics did not answer): CPU and events over the same time,
            # whether the rate held steady or not
            ev = [y - x if x is not None and y is not None else r * window for x, y, r in zip(e0, e1, rates)]
            res["events_in_window_each"] = ev
            res["errqd_us_per_event_each"] = [
                c * 1e6 / e if c is not None and e > 0 else None for c, e in zip(cpu, ev)]
            # errq-bench's own reading of each errqd over its exact window: a cross-check
            res["errqd_us_per_event_bench_each"] = [(j.get("server") or {}).get("server_us_per_event") for j in outs]
            res["client_us_per_event_each"] = [j.get("client_us_per_event") for j in outs]
            errqd_all = sum(c for c in cpu if c is not None)
            n_ev = sum(ev)
            if n_ev <= 0:  # every replica stalled through the window (lock waits): a figure, not a failure
                res["notes"].append("no event committed in the CPU window (%.1f s): no CPU per event" % window)
            res["errqd_us_per_event"] = errqd_all * 1e6 / n_ev if n_ev > 0 else None
            if kind != "sqlite":
                res["pg_cpu_s"] = p1 - p0
                res["pg_us_per_event"] = (p1 - p0) * 1e6 / n_ev if n_ev > 0 else None
                res["total_us_per_event"] = (errqd_all + p1 - p0) * 1e6 / n_ev if n_ev > 0 else None
            else:
                res["pg_cpu_s"] = res["pg_us_per_event"] = None
                res["total_us_per_event"] = res["errqd_us_per_event"]
        finally:
            res["errors"] += self.stop_replicas(reps)
            if db:
                self.drop_db(db)
            if not a.keep:
                for r in reps:
                    shutil.rmtree(r.dir, ignore_errors=True)
        return res

    def ingest(self):
        a = self.a
        configs = ([("sqlite", 1)] if not a.no_sqlite else []) + [("pg", n) for n in a.replicas]
        out = {}
        for load in a.loads:
            runs = {("sqlite" if k == "sqlite" else "pg%d" % n): [] for k, n in configs}
            for run in range(a.runs):
                for kind, n in configs:
                    label = "sqlite" if kind == "sqlite" else "pg%d" % n
                    log("%s, run %d/%d: %s ..." % (load, run + 1, a.runs, label))
                    try:
                        r = self.one_run(kind, n, load)
                    except BenchError as e:
                        r = {"config": label, "replicas": n, "errors": [str(e)]}
                    r["run"] = run
                    if r["errors"]:
                        self.failed += 1
                        for e in r["errors"]:
                            log("  FAILED: %s" % e)
                    else:
                        for e in r["notes"]:
                            log("  note: %s" % e)
                        log("  %s events/s, p99 %s ms, CPU %s µs/event (errqd%s)%s, store errors %s" % (
                            fmt(r["events_per_s"]), fmt(r["p99_ms"], 1), fmt(r["errqd_us_per_event"], 2),
                            "s" if n > 1 else "", "" if kind == "sqlite" else
                            " + %s (PostgreSQL)" % fmt(r["pg_us_per_event"], 2), r["store_errors_each"]))
                    runs[label].append(r)
            # the ratio to SQLite within the same round
            if "sqlite" in runs:
                for label, rs in runs.items():
                    for r in rs:
                        s = runs["sqlite"][r["run"]]
                        ok = not r["errors"] and not s["errors"] and s.get("events_per_s")
                        r["ratio_to_sqlite"] = r["events_per_s"] / s["events_per_s"] if ok else None
                        ok = ok and r.get("total_us_per_event") and s.get("total_us_per_event")
                        r["cpu_ratio_to_sqlite"] = r["total_us_per_event"] / s["total_us_per_event"] if ok else None
            out[load] = {label: {"runs": rs, "median": self.summarize(rs)} for label, rs in runs.items()}
        return out

    @staticmethod
    def summarize(rs):
        good = [r for r in rs if not r["errors"]]
        s = {}
        for k in ("events_per_s", "p99_ms", "errqd_us_per_event", "pg_us_per_event", "total_us_per_event",
                  "ratio_to_sqlite", "cpu_ratio_to_sqlite"):
            s[k] = median_range([r.get(k) for r in good])
        n = max((len(r.get("errqd_us_per_event_each", [])) for r in good), default=0)
        s["errqd_us_per_event_each"] = [median_range([r["errqd_us_per_event_each"][i] for r in good]) for i in range(n)]
        s["errqd_us_per_event_bench_each"] = [median_range([r["errqd_us_per_event_bench_each"][i] for r in good])
                                              for i in range(n)]
        s["client_us_per_event_each"] = [median_range([r["client_us_per_event_each"][i] for r in good]) for i in range(n)]
        s["store_errors"] = [sum(x or 0 for x in r.get("store_errors_each", [])) for r in rs]
        s["failed_runs"] = len(rs) - len(good)
        return s

    # -- failover --

    def leaders(self, reps):
        """[(index, epoch)] of the live replicas whose /metrics say they lead; None when every
        replica that answered exports no errq_fleet_leader (an errqd without the fleet)."""
        answered, seen, out = False, False, []
        for i, r in enumerate(reps):
            if not r.alive():
                continue
            m = r.metrics()
            if m is None:
                continue
            answered = True
            if "errq_fleet_leader" in m:
                seen = True
                if m["errq_fleet_leader"] == 1:
                    out.append((i, m.get("errq_fleet_epoch", 0)))
        return None if answered and not seen else out

    def wait_leader(self, reps, after_epoch=0, t0=None, deadline_s=LEADER_WAIT_S):
        """Polls every POLL_S until one live replica leads under an epoch > after_epoch:
        (index, epoch, seconds since t0)."""
        t0 = t0 if t0 is not None else time.monotonic()
        deadline = t0 + deadline_s
        while time.monotonic() < deadline:
            ls = self.leaders(reps)
            now = time.monotonic()
            if ls is None:
                raise NoFleet("no replica exports errq_fleet_leader on /metrics: '%s' has no fleet leader "
                                     "(an errqd with the fleet is needed: --errqd PATH)" % self.a.errqd)
            else:
                ls = [x for x in ls if x[1] > after_epoch]
                if ls:
                    if len(ls) > 1:
                        raise BenchError("two replicas say they lead: %s" % ls)
                    return ls[0][0], ls[0][1], now - t0
            time.sleep(max(0.0, POLL_S - (time.monotonic() - now)))
        raise BenchError("no new leader in %d s" % deadline_s)

    def wait_follower(self, r):
        deadline = time.monotonic() + LEADER_WAIT_S
        while time.monotonic() < deadline:
            m = r.metrics()
            if m is not None and m.get("errq_fleet_session_up", 1) == 1 and "errq_fleet_leader" in m:
                return
            time.sleep(POLL_S)
        raise BenchError("the restarted %s has no leader session after %d s:\n%s" % (r.name, LEADER_WAIT_S, r.log_tail()))

    def failover(self):
        a = self.a
        db = self.new_db("failover")
        url = self.pg.db_url(db)
        res = {"replicas": 3, "rounds": [], "errors": [], "skipped": None}
        reps = []
        try:
            reps = self.start_replicas("failover", 3, lambda d: url)
            leader, epoch, s = self.wait_leader(reps)
            log("failover: %s leads (epoch %d) %.2f s after the replicas were ready" % (reps[leader].name, epoch, s))
            for k in range(a.failover_runs):
                # a random phase against the followers' 1 s tries of the lock
                time.sleep(random.uniform(0.5, 1.5))
                row = self.pg.sql("SELECT leader || ' ' || epoch FROM errq_leader WHERE id = 1", db).split()
                if row != [reps[leader].name, str(epoch)]:
                    raise BenchError("errq_leader says %s, /metrics says %s epoch %d" % (row, reps[leader].name, epoch))
                t0 = time.monotonic()
                reps[leader].kill()
                new, new_epoch, s = self.wait_leader(reps, epoch, t0)
                row = self.pg.sql("SELECT leader || ' ' || epoch FROM errq_leader WHERE id = 1", db).split()
                rd = {"from": reps[leader].name, "to": reps[new].name, "ms": s * 1000, "epoch_before": epoch,
                      "epoch_after": new_epoch, "errq_leader": " ".join(row)}
                res["rounds"].append(rd)
                log("failover %d/%d: SIGKILL of %s, %s leads (epoch %d) after %.0f ms" % (
                    k + 1, a.failover_runs, rd["from"], rd["to"], new_epoch, rd["ms"]))
                # the killed one comes back as a follower, its leader session up (a candidate)
                reps[leader].start()
                reps[leader].wait_ready()
                self.wait_follower(reps[leader])
                leader, epoch = new, new_epoch
        except NoFleet as e:
            res["skipped"] = str(e)
            log("failover skipped: %s" % e)
        except BenchError as e:
            res["errors"].append(str(e))
            log("failover FAILED: %s" % e)
        finally:
            res["errors"] += self.stop_replicas(reps)
            self.drop_db(db)
        res["ms"] = median_range([r["ms"] for r in res["rounds"]])
        if res["errors"]:
            self.failed += 1
        return res


# ---- output ----

def fmt(x, nd=0):
    if x is None:
        return "-"
    return ("{:,.%df}" % nd).format(x).replace(",", " ")


def fmt_mr(m, nd=0):
    if not m:
        return "-"
    s = fmt(m["median"], nd)
    if m["n"] > 1:
        s += " (%s-%s)" % (fmt(m["min"], nd), fmt(m["max"], nd))
    return s


def print_table(a, ingest, fo):
    print()
    print("errq fleet benchmark: %d cores; %s after %s of warm-up, %d streams in all, %d run(s), median (min-max)"
          % (os.cpu_count(), a.duration_text, a.warmup_text, a.streams, a.runs))
    print("NOTE: the replicas, PostgreSQL and the errq-bench loaders share these %d cores: events/s does not scale"
          % os.cpu_count())
    print("      out here; CPU per event (user+system, µs) is the figure that extrapolates to a fleet of machines.")
    for load, cfgs in ingest.items():
        print()
        print("load %s (%s):" % (load, LOAD_TEXT[load]))
        head = ["config", "events/s", "vs SQLite", "ack p99 ms", "errqd µs/event (each)", "PostgreSQL µs/ev",
                "total µs/ev", "CPU vs SQLite", "store errors", "failed"]
        rows = [head]
        for label, c in cfgs.items():
            m = c["median"]
            rows.append([label, fmt_mr(m["events_per_s"]), fmt_mr(m["ratio_to_sqlite"], 2), fmt_mr(m["p99_ms"], 1),
                         " / ".join(fmt(e["median"] if e else None, 2) for e in m["errqd_us_per_event_each"]) or "-",
                         fmt_mr(m["pg_us_per_event"], 2), fmt_mr(m["total_us_per_event"], 2),
                         fmt_mr(m["cpu_ratio_to_sqlite"], 2), ",".join(str(x) for x in m["store_errors"]) or "-",
                         "%d/%d" % (m["failed_runs"], len(c["runs"]))])
        w = [max(len(r[i]) for r in rows) for i in range(len(head))]
        for r in rows:
            print("  " + "  ".join(r[i].ljust(w[i]) for i in range(len(head))).rstrip())
    if fo is not None:
        print()
        if fo["rounds"]:
            print("failover (3 replicas, SIGKILL of the leader, another reports errq_fleet_leader 1; %d round(s)): "
                  "%s ms" % (len(fo["rounds"]), fmt_mr(fo["ms"])))
            print("  rounds: " + ", ".join("%.0f" % r["ms"] for r in fo["rounds"]))
        if fo["skipped"]:
            print("failover: skipped: %s" % fo["skipped"])
        for e in fo["errors"]:
            print("failover: FAILED: %s" % e.splitlines()[0])


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "kernel": os.uname().release}


def on_sigterm(signum, frame):
    """SIGTERM as ^C: main's finally stops what was started."""
    raise KeyboardInterrupt()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory [build]")
    p.add_argument("--errqd", help="the errqd to measure [BUILD/bin/errqd]")
    p.add_argument("--bench", help="errq-bench [BUILD/bin/errq-bench]")
    p.add_argument("--pg-server", default=os.path.join(ROOT, "tests", "support", "pg-server"),
                   help="the private server's script [tests/support/pg-server]")
    p.add_argument("--replicas", default="1,2,3", help="PostgreSQL configurations, replicas each [1,2,3]")
    p.add_argument("--no-sqlite", action="store_true", help="skip the SQLite configuration")
    p.add_argument("--streams", type=int, default=12, help="Report streams in all, split across replicas [12]")
    p.add_argument("--duration", default="10s", help="measured time of each run [10s]")
    p.add_argument("--warmup", default="3s", help="load before it [3s]")
    p.add_argument("--runs", type=int, default=3, help="runs of each configuration [3]")
    p.add_argument("--loads", default="u50,z50k", help="u50 (50 groups uniform), z50k (50 000 Zipf 1.1) [u50,z50k]")
    p.add_argument("--rules", default="bench",
                   help="every replica's rules: bench (one rule on every event that never trips), none, or a "
                        "file holding a `rules:` section [bench]")
    p.add_argument("--sqlite-durability", default="normal", choices=["normal", "full"], help="[normal]")
    p.add_argument("--pg-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a PostgreSQL setting applied by a reload (ALTER SYSTEM), repeatable")
    p.add_argument("--bench-arg", action="append", default=[], metavar="X", help="passed to every errq-bench")
    p.add_argument("--failover-runs", type=int, default=5, help="failover rounds [5]; 0 skips the failover")
    p.add_argument("--no-ingest", action="store_true", help="the failover only")
    p.add_argument("--json", metavar="FILE", help="write every figure there")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    a = p.parse_args()

    try:
        a.duration_text, a.warmup_text = a.duration, a.warmup
        a.duration = parse_duration(a.duration)
        a.warmup = parse_duration(a.warmup)
        a.replicas = [int(x) for x in a.replicas.split(",") if x]
        if any(n < 1 or n > 16 for n in a.replicas):
            raise ValueError("--replicas: between 1 and 16 each")
        a.loads = [x for x in a.loads.split(",") if x]
        for x in a.loads:
            if x not in LOADS:
                raise ValueError("--loads: unknown load '%s' (u50, z50k)" % x)
        if a.duration < 1:
            raise ValueError("--duration: at least 1s (the CPU window is inside it)")
        if a.runs < 1 or a.streams < max(a.replicas + [1]) or a.failover_runs < 0:
            raise ValueError("--runs at least 1, --streams at least the replicas, --failover-runs at least 0")
    except (ValueError, argparse.ArgumentTypeError) as e:
        p.error(str(e))
    a.errqd = os.path.abspath(a.errqd or os.path.join(a.build, "bin", "errqd"))
    a.bench = os.path.abspath(a.bench or os.path.join(a.build, "bin", "errq-bench"))
    for f in (a.errqd, a.bench, a.pg_server):
        if not os.access(f, os.X_OK):
            p.error("'%s' is missing or not executable (make build)" % f)
    if not shutil.which("psql"):
        p.error("psql is missing (Debian: postgresql-client; scripts/install-deps installs postgresql)")
    if a.rules == "bench":
        a.rules_text = BENCH_RULES
    elif a.rules == "none":
        a.rules_text = ""
    else:
        with open(a.rules) as f:
            a.rules_text = f.read()

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (`&`)
    b = Bench(a)
    ingest, fo, rc = {}, None, 0
    t_start = time.time()
    try:
        log("%d cores: replicas, PostgreSQL and loaders share them (CPU per event is what extrapolates); "
            "errqd %s; work in %s" % (os.cpu_count(), a.errqd, b.work))
        b.start_pg()
        if not a.no_ingest:
            ingest = b.ingest()
        if a.failover_runs > 0:
            fo = b.failover()
    except KeyboardInterrupt:
        log("interrupted: stopping what was started")
        rc = 130
    except BenchError as e:
        log("error: %s" % e)
        rc = 2
    finally:
        b.cleanup()
    if rc == 130:
        return rc
    print_table(a, ingest, fo)
    if a.json:
        doc = {"tool": "bench/fleet.py", "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_start)),
               "seconds": round(time.time() - t_start, 1), "machine": machine(),
               "note": "the replicas, PostgreSQL and the loaders share the machine's cores: events/s does not scale "
                       "out here; CPU per event is what extrapolates",
               "params": {"errqd": a.errqd, "streams": a.streams, "duration": a.duration_text,
                          "warmup": a.warmup_text, "runs": a.runs, "replicas": a.replicas, "loads": a.loads,
                          "rules": a.rules, "sqlite_durability": a.sqlite_durability,
                          "pg_settings": getattr(b, "pg_settings", None), "bench_args": a.bench_arg},
               "ingest": ingest, "failover": fo}
        with open(a.json + ".tmp", "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(a.json + ".tmp", a.json)
        log("figures in %s" % a.json)
    if rc:
        return rc
    return 1 if b.failed else 0


if __name__ == "__main__":
    sys.exit(main())
