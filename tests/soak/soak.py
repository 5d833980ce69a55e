#!/usr/bin/env python3
"""soak.py: errqd under half its measured maximum for a long time, clients connecting and
disconnecting (issue 14, "Soak"; make test-long runs it for 30 minutes).

  tests/soak/soak.py BUILD_DIR        (SOAK_SECONDS=1800 by default; e.g. SOAK_SECONDS=120
                                        to check that it works)

1. Starts errqd (--listen 127.0.0.1:0 --port-file, --http-listen 127.0.0.1:0) on a temporary
   database, keeping SOAK_EVENTS_PER_GROUP events per group over SOAK_GROUPS groups, so the
   database reaches a steady size and retention runs all along.
2. Fills the database past the cap (1.5 x SOAK_GROUPS x SOAK_EVENTS_PER_GROUP events, closed
   loop), then measures the maximum: errq-bench closed loop against it (SOAK_MAX_SECONDS,
   default 10), with the cap's sweep deleting as fast as ingest adds, the state the soak runs
   in.  (Measured on an empty database the maximum has no deletion in it, and half of it is
   not sustainable with the cap on: 2026-12-07, 214k measured, 107k asked, ~95k held, p99 ~1 s.)
3. Soaks at half that rate for SOAK_SECONDS: two lanes of errq-bench processes, each at a
   quarter of the maximum, open loop (--rate), each process living 5-20 s (random) and then
   replaced by a new one: connections come and go all the time while the rate holds.  Every
   SOAK_SAMPLE seconds it records errqd's RSS (VmRSS), open fds, threads and database bytes;
   every bench process reports its ack latency (p50/p99) and errors.  Prints both tables as CSV.

No growth after warm-up, the criterion (all must hold):
  warm-up = the first 20 % of the run (caches fill, the database reaches its retained size);
  A = the first quarter after warm-up, B = the last quarter of the run;
  - RSS:     max(B) <= 1.10 * max(A) + 8 MiB
  - fds:     max(B) <= max(A) + 8
  - threads: max(B) <= max(A) + 2
  - latency: median p99 of the bench processes that ended in B <= 2 * that of A + 5 ms
  - every bench process: no errors, and at least 90 % of its requested rate acknowledged
  - database + WAL under SOAK_MAX_DB_MIB (default 4096) at every sample (the run stops there)
  - errqd up throughout and exiting 0 on SIGTERM at the end.
Exit 0 when it holds, 1 when not, 2 when it could not run.
"""
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default


SOAK_SECONDS = env_int("SOAK_SECONDS", 1800)
MAX_SECONDS = env_int("SOAK_MAX_SECONDS", 10)
SAMPLE_S = env_int("SOAK_SAMPLE", 5 if SOAK_SECONDS >= 300 else 1)
GROUPS = env_int("SOAK_GROUPS", 200)
EVENTS_PER_GROUP = env_int("SOAK_EVENTS_PER_GROUP", 5000)
MAX_DB_MIB = env_int("SOAK_MAX_DB_MIB", 4096)
LANES = 2
SEG_MIN, SEG_MAX = 5, 20


def log(msg):
    print("soak: " + msg, flush=True)


def proc_status(pid):
    rss = threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024.0
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, len(os.listdir("/proc/%d/fd" % pid)), threads


def db_mib(db):
    total = 0
    for sfx in ("", "-wal"):
        try:
            total += os.path.getsize(db + sfx)
        except OSError:
            pass
    return total / 1048576.0


class Soak:
    def __init__(self, build):
        self.bin = os.path.join(build, "bin")
        self.dir = tempfile.mkdtemp(prefix="errq-soak-")
        self.db = os.path.join(self.dir, "errq.db")
        self.samples = []   # (t, rss_mib, fds, threads, db_mib)
        self.segments = []  # (t_end, lane, rate, events_per_s, p50, p99, errors)
        self.failures = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.t0 = 0.0

    def start_errqd(self):
        portfile = os.path.join(self.dir, "port")
        logf = open(os.path.join(self.dir, "errqd.log"), "w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ERRQ_")}
        self.errqd = subprocess.Popen(
            [os.path.join(self.bin, "errqd"), "--listen", "127.0.0.1:0", "--port-file", portfile,
             "--http-listen", "127.0.0.1:0", "--db", self.db, "--set", "events_per_group=%d" % EVENTS_PER_GROUP],
            stdout=logf, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.errqd.poll() is not None:
                raise RuntimeError("errqd exited at start with status %d" % self.errqd.returncode)
            try:
                with open(portfile) as f:
                    ports = f.read().split()
                if len(ports) >= 2:
                    self.addr = "127.0.0.1:" + ports[0]
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("errqd wrote no port file in 30 s")

    def bench(self, *args, timeout):
        cmd = [os.path.join(self.bin, "errq-bench"), "--addr", self.addr, "--pid", str(self.errqd.pid),
               "--groups", str(GROUPS), "--json"] + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        try:
            return json.loads(r.stdout), r.returncode
        except ValueError:
            return None, r.returncode

    def fill(self):
        want, sent = 1.5 * GROUPS * EVENTS_PER_GROUP, 0.0
        for _ in range(30):
            out, rc = self.bench("--duration", "%ds" % MAX_SECONDS, "--warmup", "2s", timeout=MAX_SECONDS + 120)
            if not out or rc != 0:
                raise RuntimeError("filling failed (errq-bench exit %d)" % rc)
            sent += out["events_per_s"] * MAX_SECONDS
            if sent >= want:
                return sent
        raise RuntimeError("the database did not fill past the cap (%.0f events of %.0f)" % (sent, want))

    def measure_max(self):
        out, rc = self.bench("--duration", "%ds" % MAX_SECONDS, "--warmup", "2s", timeout=MAX_SECONDS + 120)
        if not out or rc != 0:
            raise RuntimeError("measuring the maximum failed (errq-bench exit %d)" % rc)
        return out["events_per_s"], out["latency"]["p99_ms"]

    def lane(self, idx, rate, end):
        rnd = random.Random(idx)
        while not self.stop.is_set():
            left = end - time.monotonic()
            if left < 1:
                return
            seg = min(rnd.randint(SEG_MIN, SEG_MAX), int(left))
            out, rc = self.bench("--rate", str(int(rate)), "--duration", "%ds" % seg, "--streams", "8",
                                 "--connections", "2", timeout=seg + 120)
            t = time.monotonic() - self.t0
            if out is None:
                with self.lock:
                    self.failures.append("lane %d: errq-bench printed nothing (exit %d) at %.0f s" % (idx, rc, t))
                return
            lat, err = out["latency"], out["errors"]["errors_total"]
            with self.lock:
                self.segments.append((t, idx, rate, out["events_per_s"], lat["p50_ms"], lat["p99_ms"], err))
                if err or rc != 0:
                    self.failures.append("lane %d: %d errors at %.0f s (%s)" % (idx, err, t, out["errors"]["first_error"]))
                if out["events_per_s"] < 0.9 * rate:
                    self.failures.append("lane %d: %.0f events/s acknowledged of %.0f asked at %.0f s"
                                         % (idx, out["events_per_s"], rate, t))

    def sampler(self, end):
        while not self.stop.is_set() and time.monotonic() < end:
            if self.errqd.poll() is not None:
                self.failures.append("errqd exited with status %d during the soak" % self.errqd.returncode)
                self.stop.set()
                return
            rss, fds, threads = proc_status(self.errqd.pid)
            size = db_mib(self.db)
            self.samples.append((time.monotonic() - self.t0, rss, fds, threads, size))
            if size > MAX_DB_MIB:
                self.failures.append("database %.0f MiB is over %d MiB: retention does not keep up" % (size, MAX_DB_MIB))
                self.stop.set()
                return
            self.stop.wait(SAMPLE_S)

    def run(self):
        self.start_errqd()
        filled = self.fill()
        log("filled with %.0f events (the cap keeps %d)" % (filled, GROUPS * EVENTS_PER_GROUP))
        mx, mx_p99 = self.measure_max()
        rate = mx / 2
        log("maximum %.0f events/s (p99 %.1f ms); soaking at %.0f events/s for %d s in %d lanes, %d-%d s "
            "per client process" % (mx, mx_p99, rate, SOAK_SECONDS, LANES, SEG_MIN, SEG_MAX))
        self.t0 = time.monotonic()
        end = self.t0 + SOAK_SECONDS
        threads = [threading.Thread(target=self.sampler, args=(end,))]
        threads += [threading.Thread(target=self.lane, args=(i, rate / LANES, end)) for i in range(LANES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.errqd.send_signal(signal.SIGTERM)
        try:
            st = self.errqd.wait(60)
        except subprocess.TimeoutExpired:
            self.errqd.kill()
            st = -1
        if st != 0:
            self.failures.append("errqd exited with status %d on SIGTERM" % st)
        return self.judge()

    def judge(self):
        print("t_s,rss_mib,fds,threads,db_mib")
        for s in self.samples:
            print("%.1f,%.1f,%d,%d,%.1f" % s)
        print("t_end_s,lane,rate,events_per_s,p50_ms,p99_ms,errors")
        for s in self.segments:
            print("%.1f,%d,%.0f,%.0f,%.2f,%.2f,%d" % s)
        warm = 0.2 * SOAK_SECONDS
        q = (SOAK_SECONDS - warm) / 4
        a = [s for s in self.samples if warm <= s[0] < warm + q]
        b = [s for s in self.samples if s[0] >= SOAK_SECONDS - q]
        sa = [s for s in self.segments if warm <= s[0] < warm + q]
        sb = [s for s in self.segments if s[0] >= SOAK_SECONDS - q]
        if not a or not b or not sa or not sb:
            self.failures.append("too few samples after warm-up (%d, %d) or bench processes (%d, %d): run longer"
                                 % (len(a), len(b), len(sa), len(sb)))
        else:
            rss_a, rss_b = max(s[1] for s in a), max(s[1] for s in b)
            fd_a, fd_b = max(s[2] for s in a), max(s[2] for s in b)
            th_a, th_b = max(s[3] for s in a), max(s[3] for s in b)
            p99_a, p99_b = statistics.median(s[5] for s in sa), statistics.median(s[5] for s in sb)
            log("after warm-up (%.0f s), first quarter vs last: RSS peak %.1f -> %.1f MiB, fds %d -> %d, "
                "threads %d -> %d, median p99 %.2f -> %.2f ms; database peak %.0f MiB; %d client processes"
                % (warm, rss_a, rss_b, fd_a, fd_b, th_a, th_b, p99_a, p99_b, max(s[4] for s in self.samples),
                   len(self.segments)))
            if rss_b > 1.10 * rss_a + 8:
                self.failures.append("RSS grew: %.1f MiB after warm-up, %.1f MiB at the end" % (rss_a, rss_b))
            if fd_b > fd_a + 8:
                self.failures.append("fds grew: %d after warm-up, %d at the end" % (fd_a, fd_b))
            if th_b > th_a + 2:
                self.failures.append("threads grew: %d after warm-up, %d at the end" % (th_a, th_b))
            if p99_b > 2 * p99_a + 5:
                self.failures.append("ack latency grew: median p99 %.2f ms after warm-up, %.2f ms at the end"
                                     % (p99_a, p99_b))
        for f in self.failures:
            log("FAIL: " + f)
        log("no growth after warm-up" if not self.failures else "%d failure(s)" % len(self.failures))
        return 0 if not self.failures else 1

    def cleanup(self):
        if getattr(self, "errqd", None) and self.errqd.poll() is None:
            self.errqd.kill()
            self.errqd.wait()
        if not os.environ.get("ERRQ_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            log("kept " + self.dir)


def main():
    if len(sys.argv) != 2:
        print("usage: tests/soak/soak.py BUILD_DIR", file=sys.stderr)
        return 2
    s = Soak(sys.argv[1])
    try:
        return s.run()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        log("cannot run: %s" % e)
        return 2
    finally:
        s.stop.set()
        s.cleanup()


if __name__ == "__main__":
    sys.exit(main())
