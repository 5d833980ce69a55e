"""With the collector down, 10 000 reports from an event loop never stall it, and are all
delivered when the collector comes back (liberrq queues them, spools the overflow to disk,
and sends the spool once the collector answers)."""

import asyncio
import os
import statistics
import time
import unittest

import support
import errq

N_REPORTS = 10000
PER_TICK = 100          # reports per loop iteration
# The bar: the longest loop iteration that made PER_TICK reports, divided by PER_TICK, stays
# under 1 ms per report (a report costs some 20-40 µs of Python here: the margin absorbs a
# loaded, shared machine; a report that waited on the network would take far longer).
MAX_LAG_PER_REPORT_S = 0.001


def deep(n, i):
    if n == 0:
        raise ConnectionError("upstream %d unreachable" % (i % 7))
    deep(n - 1, i)


class CollectorDownTest(unittest.TestCase):

    def setUp(self):
        self.errqd = support.Errqd()
        self.errqd.start()
        self.port = self.errqd.port
        self.errqd.stop()  # down from the start: the client has never reached it
        self.service = "py-collector-down"
        errq.init(addr="127.0.0.1:%d" % self.port, service=self.service,
                  spool_dir=os.path.join(self.errqd.dir, "spool"),
                  reconnect_backoff_ms=(50, 500))

    def tearDown(self):
        errq.close(10)
        self.errqd.cleanup()

    def test_reports_never_stall_the_loop_and_arrive_later(self):
        lags = []

        async def main():
            loop = asyncio.get_running_loop()
            done = False

            async def ticker():  # how late the loop comes back to a 1 ms timer
                while not done:
                    t0 = loop.time()
                    await asyncio.sleep(0.001)
                    lags.append(loop.time() - t0 - 0.001)

            tick = asyncio.create_task(ticker())
            t0 = time.perf_counter()
            i = 0
            while i < N_REPORTS:
                for _ in range(PER_TICK):
                    try:
                        deep(8, i)
                    except ConnectionError as e:
                        self.assertTrue(errq.report(e, task="poll_upstream"))
                    i += 1
                await asyncio.sleep(0)
            elapsed = time.perf_counter() - t0
            done = True
            await tick
            return elapsed

        elapsed = asyncio.run(main())
        st = errq.stats()
        self.assertEqual(st["queued"], N_REPORTS)
        self.assertEqual(st["acked"], 0)  # nothing could have been delivered
        worst = max(lags)
        print("\n%d reports with the collector down: %.1f µs a report (building included); "
              "loop lag median %.2f ms, max %.2f ms over %d ticks of %d reports"
              % (N_REPORTS, elapsed / N_REPORTS * 1e6, statistics.median(lags) * 1e3,
                 worst * 1e3, len(lags), PER_TICK))
        self.assertLess(worst / PER_TICK, MAX_LAG_PER_REPORT_S)

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
