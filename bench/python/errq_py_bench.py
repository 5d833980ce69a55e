#!/usr/bin/python3
"""errq-py-bench: what the Python package costs a service (issue 11).

Starts its own errqd (temporary database, ephemeral ports) and prints:
  (1) errq.report(exc) for an exception with a 10-frame traceback: median and p99, µs
      (the exception is built beforehand; the timer brackets the report alone);
  (2) a monitored coroutine call that succeeds, against the plain coroutine call: median
      and p99, µs per `await f()` (monitor's own cost is the difference);
  (3) event-loop lag while tasks fail at 10 000 a second (errq.asyncio.install reports each
      one): the loop's lateness to a 1 ms timer, median, p99 and max, ms; and the same load
      without errq, for comparison.

Usage: bench/python/errq_py_bench.py [--build BUILD] [--n N] [--seconds S]
Environment: ERRQ_LIBRARY, ERRQD_PATH override the build tree's liberrq.so and errqd.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "clients", "python"))
sys.path.insert(0, os.path.join(SRC, "clients", "python", "tests"))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def exc_with_frames(depth, i):
    """An exception whose traceback has depth frames (this one and depth-1 below it)."""
    def f(n):
        if n == 1:
            raise TimeoutError("upstream %d timed out after 5000 ms" % i)
        f(n - 1)
    try:
        f(depth - 1)
    except TimeoutError as e:
        return e


def bench_report(errq, n):
    excs = [exc_with_frames(10, i) for i in range(n)]
    assert len(excs[0].__traceback__.tb_frame.f_code.co_name) > 0
    depth, tb = 0, excs[0].__traceback__
    while tb is not None:
        depth, tb = depth + 1, tb.tb_next
    assert depth == 10, depth
    pc = time.perf_counter_ns
    times = []
    for e in excs:
        t0 = pc()
        errq.report(e, task="bench")
        times.append(pc() - t0)
    return [t / 1000.0 for t in times]


def bench_monitor(errq, n):
    async def work(x):
        return x + 1

    monitored = errq.monitor(task="bench_ok")(work)

    async def run(fn):
        pc = time.perf_counter_ns
        out = []
        for i in range(n):
            t0 = pc()
            await fn(i)
            out.append(pc() - t0)
        return [t / 1000.0 for t in out]

    async def main():
        await run(work)  # warm both
        await run(monitored)
        plain, mon = [], []
        for _ in range(5):  # alternate, so load changes hit both alike
            plain += await run(work)
            mon += await run(monitored)
        return plain, mon
    return asyncio.run(main())


def bench_lag(errq, rate, seconds, with_errq):
    async def failing(i):
        raise ConnectionError("peer %d reset" % (i % 13))

    async def main():
        if with_errq:
            errq.asyncio.install()
        loop = asyncio.get_running_loop()
        lags = []
        stop = loop.time() + seconds

        async def ticker():
            while loop.time() < stop:
                t0 = loop.time()
                await asyncio.sleep(0.001)
                lags.append((loop.time() - t0 - 0.001) * 1000.0)

        tick = asyncio.create_task(ticker())
        made = 0
        start = loop.time()
        tasks = []
        while loop.time() < stop:
            due = int((loop.time() - start) * rate)
            while made < due:
                t = asyncio.create_task(failing(made))
                tasks.append(t)
                made += 1
            await asyncio.sleep(0.001)
            if len(tasks) > 1000:
                for t in tasks:
                    if t.done():
                        t.exception()  # retrieved: no "never retrieved" log for each
                tasks = [t for t in tasks if not t.done()]
        await tick
        for t in tasks:
            try:
                await t
            except ConnectionError:
                pass
        return lags, made / seconds
    return asyncio.run(main())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rate", type=int, default=10000)
    a = ap.parse_args()
    os.environ.setdefault("ERRQ_LIBRARY", os.path.join(a.build, "lib", "liberrq.so"))
    os.environ.setdefault("ERRQD_PATH", os.path.join(a.build, "bin", "errqd"))
    import support
    import errq

    d = support.Errqd().start()
    try:
        errq.init(addr=d.addr, service="py-bench", queue_capacity=100000,
                  queue_bytes=256 << 20)
        print("python %s, liberrq %s, errqd at %s" % (
            sys.version.split()[0], errq._lib.load().errq_version().decode(), d.addr))

        bench_report(errq, 2000)  # warm caches
        r = bench_report(errq, a.n)
        print("(1) errq.report(exc), 10-frame traceback, %d reports: median %.1f µs, "
              "p99 %.1f µs" % (a.n, statistics.median(r), pct(r, 0.99)))
        if not errq.flush(60):
            print("    (flush timed out: %r)" % errq.stats())

        plain, mon = bench_monitor(errq, a.n // 4)
        print("(2) await f() that succeeds: plain median %.2f µs p99 %.2f µs; "
              "@errq.monitor median %.2f µs p99 %.2f µs (+%.2f µs)"
              % (statistics.median(plain), pct(plain, 0.99), statistics.median(mon),
                 pct(mon, 0.99), statistics.median(mon) - statistics.median(plain)))

        for with_errq in (False, True):
            lags, achieved = bench_lag(errq, a.rate, a.seconds, with_errq)
            print("(3) loop lag, tasks failing at %d/s (achieved %.0f/s) for %g s, %s: "
                  "median %.2f ms, p99 %.2f ms, max %.2f ms (%d ticks)"
                  % (a.rate, achieved, a.seconds,
                     "errq.asyncio.install reporting each" if with_errq else "without errq",
                     statistics.median(lags), pct(lags, 0.99), max(lags), len(lags)))
        ok = errq.flush(60)
        st = errq.stats()
        dropped = st["dropped_queue_full"] + st["dropped_too_big"] + st["dropped_closed"]
        print("    delivered: flush %s; queued %d, accepted %d, dropped %d"
              % ("ok" if ok else "timed out", st["queued"], st["accepted"], dropped))
    finally:
        errq.close(10)
        d.cleanup()
    if not ok or dropped or st["accepted"] != st["queued"]:
        print("errq-py-bench: not every event was delivered", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
