"""With the collector unreachable, 10 000 reports from an event loop never stall it, and are
all delivered when the collector comes back (liberrq queues them, spools the overflow to disk,
and sends the spool once the collector answers).

"Unreachable" is the hard case: an address that accepts TCP connections and never answers
(a listening socket nobody accepts from), so a report that waited on the network would hang
until a deadline instead of failing fast on a refused connection.  The bar is relative, measured
in the same run (speed figures belong to bench/python/errq_py_bench.py, not here): the same
loop first runs against the collector up, and with it unreachable the loop's iterations may
take at most STALL_FACTOR times as long (95th percentile), and none may hold the loop for
MAX_HOLD_S, a quarter of the 20 s that one wait for gRPC's connection handshake to such an
address would take."""

import asyncio
import os
import socket
import statistics
import time
import unittest

import support
import errq

N_REPORTS = 10000
PER_TICK = 100          # reports per loop iteration: 100 iterations
STALL_FACTOR = 10       # p95 of an iteration, unreachable vs up, same run
MAX_HOLD_S = 5.0        # any one iteration (100 reports); one network wait is 20 s


def deep(n, i):
    if n == 0:
        raise ConnectionError("upstream %d unreachable" % (i % 7))
    deep(n - 1, i)


class CollectorDownTest(unittest.TestCase):

    def setUp(self):
        self.errqd = support.Errqd()
        self.errqd.start()
        self.service = "py-collector-down"
        self.blackhole = None
        # Room for all of them in memory (10 000 events of ~1 KiB are more than the default
        # 8 MiB), and a spool besides: what is kept does not depend on how fast liberrq's
        # thread writes the spool on a loaded machine.
        self.opts = dict(spool_dir=os.path.join(self.errqd.dir, "spool"),
                         queue_capacity=2 * N_REPORTS, queue_bytes=64 << 20,
                         reconnect_backoff_ms=(50, 500))

    def tearDown(self):
        errq.close(10)
        if self.blackhole:
            self.blackhole.close()
        self.errqd.cleanup()

    def run_loop(self):
        """N_REPORTS reports, PER_TICK per loop iteration; returns the seconds each iteration
        held the loop and how late a 1 ms timer came back meanwhile."""
        held, lags = [], []

        async def main():
            loop = asyncio.get_running_loop()
            done = False

            async def ticker():
                while not done:
                    t0 = loop.time()
                    await asyncio.sleep(0.001)
                    lags.append(loop.time() - t0 - 0.001)

            tick = asyncio.create_task(ticker())
            i = 0
            while i < N_REPORTS:
                t0 = time.perf_counter()
                for _ in range(PER_TICK):
                    try:
                        deep(8, i)
                    except ConnectionError as e:
                        self.assertTrue(errq.report(e, task="poll_upstream"))
                    i += 1
                held.append(time.perf_counter() - t0)
                await asyncio.sleep(0)
            done = True
            await tick

        asyncio.run(main())
        self.assertEqual(len(held), N_REPORTS // PER_TICK)
        return sorted(held), lags

    def test_reports_never_stall_the_loop_and_arrive_later(self):
        # the baseline: the same loop with the collector up
        errq.init(addr="127.0.0.1:%d" % self.errqd.port, service=self.service + "-up", **self.opts)
        up, _ = self.run_loop()
        self.assertTrue(errq.flush(support.DEADLINE * 2), "not delivered: %r" % errq.stats())
        errq.close(10)
        self.port = self.errqd.port
        self.errqd.stop()

        # unreachable: the collector's port accepts connections that nobody ever answers
        self.blackhole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.blackhole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.blackhole.bind(("127.0.0.1", self.port))
        self.blackhole.listen(64)
        errq.init(addr="127.0.0.1:%d" % self.port, service=self.service, **self.opts)
        down, lags = self.run_loop()
        st = errq.stats()
        self.assertEqual(st["queued"], N_REPORTS)
        self.assertEqual(st["acked"], 0)  # nothing could have been delivered

        def p95(held):
            return held[int(len(held) * 0.95)]
        print("\n%d reports, per iteration of %d: collector up median %.2f ms, p95 %.2f ms; "
              "unreachable median %.2f ms, p95 %.2f ms, max %.2f ms; loop lag to a 1 ms timer "
              "median %.2f ms, max %.2f ms" % (
                  N_REPORTS, PER_TICK, statistics.median(up) * 1e3, p95(up) * 1e3,
                  statistics.median(down) * 1e3, p95(down) * 1e3, down[-1] * 1e3,
                  statistics.median(lags) * 1e3, max(lags) * 1e3))
        self.assertLess(p95(down), STALL_FACTOR * p95(up))
        self.assertLess(down[-1], MAX_HOLD_S)

        self.blackhole.close()
        self.blackhole = None
        self.errqd.start(port=self.port)  # back, on the address the client knows
        self.assertTrue(errq.flush(support.DEADLINE * 2), "not delivered: %r" % errq.stats())
        st = errq.stats()
        for k in ("dropped_queue_full", "dropped_too_big", "dropped_closed", "dropped_spool",
                  "dropped_nomem", "dropped_invalid"):
            self.assertEqual(st[k], 0, k)

        def stored():
            groups = support.rows_of(self.errqd.cli("groups", "--service", self.service))
            return sum(g["total"] for g in groups)
        support.wait_for(lambda: stored() == N_REPORTS, "%d events stored" % N_REPORTS)
        groups = support.rows_of(self.errqd.cli("groups", "--service", self.service))
        self.assertEqual(len(groups), 1)  # one place in the code: one group, whatever the message


if __name__ == "__main__":
    unittest.main()
