"""The token= option against a real errqd that requires credentials (docs/security.md): with
an ingest token the events are stored, an event of a service the token may not report is
rejected alone, and a client without a token has its streams refused and nothing stored."""

import json
import subprocess
import unittest

import support
import errq


def token_new(*args):
    """`errq token new -o json ARGS`: the token and the YAML entry for the config."""
    r = subprocess.run([support.ERRQ_CLI, "-o", "json", "token", "new"] + list(args),
                       capture_output=True, text=True, timeout=support.DEADLINE, check=True)
    d = json.loads(r.stdout)
    entry = "  - name: %s\n    token_sha256: %s\n    role: %s\n" % (d["name"], d["token_sha256"],
                                                                   d["role"])
    if d["services"]:
        entry += "    services: %s\n" % json.dumps(d["services"])
    return d["token"], entry


class TokenTest(support.ErrqdCase):

    @classmethod
    def setUpClass(cls):
        cls.ingest, e1 = token_new("--name", "py-ingest", "--role", "ingest", "--service", "py-tok-*")
        cls.reader, e2 = token_new("--name", "py-reader", "--role", "read")
        cls.CONFIG = "credentials:\n" + e1 + e2
        super().setUpClass()

    def setUp(self):  # each test starts its own client, with or without the token
        pass

    def tearDown(self):
        pass

    def events(self, service):
        return support.rows_of(self.errqd.cli("--token", self.reader, "events", "--service", service))

    def test_token_reports(self):
        errq.init(addr=self.errqd.addr, service="py-tok-checkout", token=self.ingest, linger_ms=5)
        try:
            for i in range(3):
                try:
                    raise TimeoutError("slow upstream %d" % i)
                except TimeoutError as e:
                    self.assertTrue(errq.report(e))
            self.assertTrue(errq.flush(support.DEADLINE), self.errqd.tail())
            st = errq.stats()
            self.assertEqual((st["acked"], st["rejected"]), (3, 0))
        finally:
            self.assertEqual(errq.close(10), 0)
        self.assertEqual(len(self.events("py-tok-checkout")), 3)

    def test_service_not_allowed(self):
        errq.init(addr=self.errqd.addr, service="py-other", token=self.ingest, linger_ms=5)
        try:
            try:
                raise KeyError("not this token's service")
            except KeyError as e:
                self.assertTrue(errq.report(e))
            self.assertTrue(errq.flush(support.DEADLINE), self.errqd.tail())
            st = errq.stats()
            self.assertEqual((st["acked"], st["rejected"]), (1, 1))  # service_not_allowed
        finally:
            self.assertEqual(errq.close(10), 0)
        self.assertEqual(self.events("py-other"), [])

    def test_no_token_is_refused(self):
        errq.init(addr=self.errqd.addr, service="py-tok-anonymous", linger_ms=5,
                  reconnect_backoff_ms=(10, 200))
        try:
            try:
                raise TimeoutError("nobody will take this")
            except TimeoutError as e:
                self.assertTrue(errq.report(e))
            st = support.wait_for(lambda: (lambda s: s if s["stream_failures"] >= 2 else None)(
                errq.stats()), "refused streams")
            self.assertEqual(st["acked"], 0)
        finally:
            errq.close(0.1)  # the event is lost at close: nobody would take it
        self.assertEqual(self.events("py-tok-anonymous"), [])
        r = subprocess.run([support.ERRQ_CLI, "--addr", self.errqd.addr, "events"],
                           capture_output=True, text=True, timeout=support.DEADLINE)
        self.assertEqual(r.returncode, 4, r.stderr)  # and errq without a token
        self.assertIn("unauthenticated", r.stderr)


if __name__ == "__main__":
    unittest.main()
