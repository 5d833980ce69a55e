"""Alert rules fed from Python, against a real errqd: monitor's outcomes trip a failure_rate
rule; three TimeoutErrors from a monitored coroutine open a circuit and fire a webhook
(received by a stdlib HTTP server in this process)."""

import asyncio
import unittest

import support
import errq

CONFIG = """
notifiers:
  - name: hook
    type: webhook
    url: @WEBHOOK@
    timeout: 5s
rules:
  - name: py-timeouts
    match: {service: py-three_timeouts_fire_the_webhook, error_type: TimeoutError}
    group_by: [service, error_type]
    trip: {failures: 3, window: 60s}
    severity: critical
    notify: [hook]
  - name: py-rate
    match: {service: py-monitor_outcomes_trip_failure_rate}
    group_by: [service, task]
    trip: {failure_rate: 0.3, min_calls: 10, window: 60s}
    notify: [hook]
"""


class AlertsTest(support.ErrqdCase):
    CONFIG = CONFIG
    WEBHOOK = True
    OPTIONS = {"outcome_interval": 1}

    def circuit(self, rule):
        rows = support.rows_of(self.errqd.cli("circuits", "--rule", rule))
        return rows[0] if rows else None

    def test_three_timeouts_fire_the_webhook(self):
        @errq.monitor(task="reserve_inventory")
        async def reserve(i):
            await asyncio.sleep(0)
            raise TimeoutError("inventory reservation %d timed out" % i)

        async def main():
            errq.asyncio.install()
            for i in range(3):
                with self.assertRaises(TimeoutError):
                    await reserve(i)
        asyncio.run(main())
        self.assertTrue(errq.flush(support.DEADLINE))
        bodies = self.hook.wait(lambda b: b.get("rule") == "py-timeouts"
                                and b.get("status") == "firing", "py-timeouts firing")
        self.assertEqual(len(bodies), 1)
        b = bodies[0]
        self.assertEqual(b["key"], {"service": self.service, "error_type": "TimeoutError"})
        self.assertEqual(b["failures_in_window"], 3)
        self.assertEqual(b["severity"], "critical")
        self.assertEqual(b["sample"]["task"], "reserve_inventory")
        self.assertFalse(b["sample"]["handled"])
        c = support.wait_for(lambda: (lambda c: c if c and c["state"] == "open" else None)(
            self.circuit("py-timeouts")), "the py-timeouts circuit open")
        self.assertEqual(c["state"], "open")

    def test_monitor_outcomes_trip_failure_rate(self):
        @errq.monitor(task="charge_card")
        def charge(i):
            if i % 2:
                raise ConnectionError("provider refused %d" % i)
            return i

        for i in range(20):  # 10 ok, 10 failed: a rate of 0.5 over 20 calls
            try:
                charge(i)
            except ConnectionError:
                pass
        st = errq.stats()
        self.assertEqual(st["outcomes_recorded"], 20)
        bodies = self.hook.wait(lambda b: b.get("rule") == "py-rate"
                                and b.get("status") == "firing", "py-rate firing")
        b = bodies[0]
        self.assertEqual(b["key"], {"service": self.service, "task": "charge_card"})
        # the calls may reach errqd in one outcome window or two: it trips on the first
        # that has min_calls at a rate of 0.3 or more
        self.assertGreaterEqual(b["calls_in_window"], 10)
        self.assertLessEqual(b["calls_in_window"], 20)
        self.assertGreaterEqual(b["failed_calls_in_window"] / b["calls_in_window"], 0.3)
        c = self.circuit("py-rate")
        self.assertEqual(c["state"], "open")
        self.assertEqual(len(self.flushed_events()), 10)  # each failure is an event too


if __name__ == "__main__":
    unittest.main()
