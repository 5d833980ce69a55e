"""The tls= option against a real errqd serving mutual TLS (tls.cert, tls.key and
tls.client_ca; certificates made at each run by tests/support/make_certs.sh): the right CA
and client certificate deliver; a client without a certificate, or with a wrong CA, delivers
nothing and counts failed streams."""

import os
import shutil
import subprocess
import tempfile
import unittest

import support
import errq


class TlsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="errq-py-tls-")
        subprocess.run(["/bin/sh", os.path.join(support.SRC, "tests", "support", "make_certs.sh"),
                        cls.certs], check=True, timeout=support.DEADLINE)
        cls.errqd = support.Errqd("tls:\n  cert: %s\n  key: %s\n  client_ca: %s\n"
                                  % (cls.crt("server.pem"), cls.crt("server.key"),
                                     cls.crt("ca.pem")))
        cls.errqd.cli_flags = ["--ca", cls.crt("ca.pem"), "--cert", cls.crt("client.pem"),
                               "--key", cls.crt("client.key")]
        try:
            cls.errqd.start()
        except BaseException:
            cls.errqd.cleanup()
            shutil.rmtree(cls.certs, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.errqd.cleanup()
        shutil.rmtree(cls.certs, ignore_errors=True)

    @classmethod
    def crt(cls, name):
        return os.path.join(cls.certs, name)

    def tearDown(self):
        errq.close(0)

    def report(self, service, tls):
        errq.init(addr=self.errqd.addr, service=service, linger_ms=5, tls=tls)
        try:
            raise TimeoutError("upstream took too long")
        except TimeoutError as e:
            self.assertTrue(errq.report(e))

    def test_mutual_tls_delivers(self):
        self.report("py-tls-ok", (self.crt("ca.pem"), self.crt("client.pem"), self.crt("client.key")))
        self.assertTrue(errq.flush(support.DEADLINE), "flush timed out; log:\n" + self.errqd.tail())
        self.assertEqual(errq.stats()["accepted"], 1)
        rows = self.errqd.events("py-tls-ok")
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0]["error_type"], "TimeoutError")

    def refused(self, service, tls):
        self.report(service, tls)
        support.wait_for(lambda: errq.stats()["stream_failures"] > 0, "a failed stream")
        self.assertEqual(errq.stats()["accepted"], 0)
        self.assertEqual(self.errqd.events(service), [])

    def test_no_client_certificate_refused(self):
        self.refused("py-tls-nocert", (self.crt("ca.pem"),))

    def test_wrong_ca_refused(self):
        self.refused("py-tls-wrongca", (self.crt("ca2.pem"), self.crt("client.pem"),
                                        self.crt("client.key")))

    def test_plain_text_refused(self):
        errq.init(addr=self.errqd.addr, service="py-tls-plain", linger_ms=5)
        try:
            raise TimeoutError("x")
        except TimeoutError as e:
            errq.report(e)
        support.wait_for(lambda: errq.stats()["stream_failures"] > 0, "a failed stream")
        self.assertEqual(errq.stats()["accepted"], 0)


if __name__ == "__main__":
    unittest.main()
