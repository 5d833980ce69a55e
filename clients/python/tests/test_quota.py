"""The package against a collector with a quota: events refused with quota_exceeded are
counted in stats()["rejected_quota"] and not resent (the collector counted them already: each
event is counted once in the service's groups, stored or not)."""

import unittest

import support
import errq


class QuotaTest(support.ErrqdCase):
    # a bucket of 5 per service, refilled at 1 event/s
    CONFIG = "quota:\n  service_events_per_second: 1\n  service_burst: 5\n"

    def test_quota_exceeded_counted_not_resent(self):
        n = 30
        for i in range(n):
            try:
                raise TimeoutError("storm %d" % i)
            except TimeoutError as e:
                self.assertTrue(errq.report(e))
        stored = self.flushed_events()
        st = errq.stats()
        self.assertEqual(st["acked"], n)
        self.assertEqual(st["rejected"], st["rejected_quota"])
        self.assertEqual(st["accepted"] + st["rejected_quota"], n)
        # the 30 arrive within seconds: most find the bucket empty
        self.assertGreaterEqual(st["accepted"], 5)
        self.assertGreater(st["rejected_quota"], 0)
        self.assertEqual(len(support.rows_of(stored)), st["accepted"])
        groups = support.rows_of(self.errqd.cli("groups", "--service", self.service))
        self.assertEqual(sum(g["total"] for g in groups), n)
        self.assertEqual(sum(g["dropped"] for g in groups), st["rejected_quota"])


if __name__ == "__main__":
    unittest.main()
