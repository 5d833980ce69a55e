"""Test support: a real errqd on ephemeral ports with a temporary database, the errq CLI
to read back what it stored, a webhook receiver, and waiting with deadlines.

Binaries come from the environment (CMake passes them): ERRQD_PATH, ERRQ_CLI_PATH, and
ERRQ_LIBRARY for liberrq.  Without them the build tree next to the source is tried.
"""

import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..")))

ERRQD = os.environ.get("ERRQD_PATH") or os.path.join(SRC, "build", "bin", "errqd")
ERRQ_CLI = os.environ.get("ERRQ_CLI_PATH") or os.path.join(SRC, "build", "bin", "errq")
os.environ.setdefault("ERRQ_LIBRARY", os.path.join(SRC, "build", "lib", "liberrq.so"))

# util-linux's setpriv (Debian: always installed) sets errqd's parent-death signal.
SETPRIV = shutil.which("setpriv")

# Waiting for something the machine does in milliseconds: 30 s is far more than 10x that.
DEADLINE = 30.0


def wait_for(pred, what, deadline=DEADLINE, interval=0.05):
    """pred()'s first truthy value; AssertionError naming what when the deadline passes."""
    end = time.monotonic() + deadline
    last = None
    while True:
        try:
            last = pred()
        except Exception as e:  # a query that fails while errqd starts: try again
            last = e
        else:
            if last:
                return last
        if time.monotonic() > end:
            raise AssertionError("timed out after %.0f s waiting for %s (last: %r)"
                                 % (deadline, what, last))
        time.sleep(interval)


class Errqd:
    """errqd --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 with a database in a
    temporary directory; stop() ends it, start() again keeps the database."""

    def __init__(self, config=None):
        self.dir = tempfile.mkdtemp(prefix="errq-py-")
        self.db = os.path.join(self.dir, "errq.db")
        self.log = os.path.join(self.dir, "errqd.log")
        self.config = None
        if config is not None:
            self.config = os.path.join(self.dir, "errqd.yaml")
            with open(self.config, "w") as f:
                f.write(config)
        self.proc = None
        self.port = None
        self.addr = None
        self.cli_flags = []  # e.g. ["--ca", FILE] for a collector that serves TLS

    def start(self, port=None):
        portfile = os.path.join(self.dir, "port")
        if os.path.exists(portfile):
            os.unlink(portfile)
        listen = "127.0.0.1:%d" % (port or 0)
        args = [ERRQD, "--listen", listen, "--port-file", portfile, "--http-listen",
                "127.0.0.1:0", "--db", self.db, "--log-level", "debug"]
        if SETPRIV:  # errqd dies with the test, even when the test is killed or crashes
            args = [SETPRIV, "--pdeathsig", "KILL", "--"] + args
        if self.config:
            args += ["--config", self.config]
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("errqd exited early (%s); log %s:\n%s"
                                     % (self.proc.returncode, self.log, self.tail()))
            try:  # the gRPC port first (later errqd versions add the HTTP port after it)
                with open(portfile) as f:
                    words = f.read().split()
                return int(words[0]) if words else 0
            except (OSError, ValueError):
                return 0
        try:
            self.port = wait_for(ready, "errqd's port file")
        except BaseException:
            self.stop(signal.SIGKILL)  # a caller that never got us cannot clean up
            raise
        self.addr = "127.0.0.1:%d" % self.port
        return self

    def tail(self, n=30):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def cli(self, *args, check=True):
        """errq -o json ARGS against this errqd; the parsed JSON."""
        r = subprocess.run([ERRQ_CLI, "--addr", self.addr, "-o", "json", "--timeout", "10s"]
                           + self.cli_flags + list(args), capture_output=True, text=True, timeout=DEADLINE)
        if check and r.returncode != 0:
            raise AssertionError("errq %s: exit %d: %s" % (" ".join(args), r.returncode,
                                                            r.stderr.strip()))
        return json.loads(r.stdout) if r.stdout.strip() else None

    def events(self, service, limit=20000):
        """Every stored event of service (events list rows), newest first."""
        return self.cli("events", "--service", service, "--limit", str(limit))

    def event(self, event_id):
        return self.cli("event", event_id)

    def wait_events(self, service, n, what=None):
        """Waits until service has at least n events; returns them with every field."""
        rows = wait_for(lambda: (lambda r: r if r is not None and len(r) >= n else None)(
            self.events(service)), what or "%d events of %s" % (n, service))
        return rows


def rows_of(doc):
    """The rows of a CLI list answer, whatever key wraps them."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for k in ("events", "groups", "circuits", "alerts", "items", "rows"):
            if isinstance(doc.get(k), list):
                return doc[k]
    raise AssertionError("not a list answer: %r" % (doc,))


class WebhookReceiver:
    """A stdlib HTTP server on 127.0.0.1:0 in a thread that keeps every POSTed JSON body."""

    def __init__(self):
        self.bodies = []
        self.cv = threading.Condition()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = {"unparsable": body.decode("utf-8", "replace")}
                with outer.cv:
                    outer.bodies.append(doc)
                    outer.cv.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/alerts" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, pred, what):
        end = time.monotonic() + DEADLINE
        with self.cv:
            while True:
                hit = [b for b in self.bodies if pred(b)]
                if hit:
                    return hit
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for a webhook: %s (got %r)"
                                         % (what, self.bodies))
                self.cv.wait(left)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


import unittest  # noqa: E402

import errq  # noqa: E402  (sys.path is set above)


class ErrqdCase(unittest.TestCase):
    """One errqd for the test class (config: CONFIG, formatted with the class's webhook
    receiver URL when WEBHOOK is set); each test reports under its own service name with
    a fresh errq.init and closes the client after."""

    CONFIG = None
    WEBHOOK = False
    OPTIONS = {}

    @classmethod
    def setUpClass(cls):
        cls.hook = WebhookReceiver() if cls.WEBHOOK else None
        config = cls.CONFIG
        if config is not None and cls.hook is not None:
            config = config.replace("@WEBHOOK@", cls.hook.url)
        cls.errqd = Errqd(config)
        try:
            cls.errqd.start()
        except BaseException:
            cls.errqd.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.errqd.cleanup()
        if cls.hook is not None:
            cls.hook.close()

    def setUp(self):
        self.service = ("py-" + self._testMethodName.replace("test_", "", 1))[:120]
        opts = dict(linger_ms=5)
        opts.update(self.OPTIONS)
        errq.init(addr=self.errqd.addr, service=self.service, environment="test", **opts)

    def tearDown(self):
        lost = errq.close(10)
        self.assertEqual(lost, 0, "events lost at close")

    def flushed_events(self):
        """Every event of this test's service, after a flush (so exactly those reported)."""
        self.assertTrue(errq.flush(DEADLINE), "flush timed out; log:\n" + self.errqd.tail())
        return self.errqd.events(self.service)
