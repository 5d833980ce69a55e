"""errq.report and the wrappers against a real errqd: what an exception becomes (type, code,
details, frames, chain), gather, retry, monitor, logging, structlog, fork."""

import asyncio
import logging
import os
import sys
import unittest

import support
import errq
import errq.structlog


class AppException(Exception):
    """The AppException(message, code, details) pattern of many services."""

    def __init__(self, message, code=None, details=None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details


class PaymentDeclined(AppException):
    pass


def charge(card):
    raise PaymentDeclined("card declined", "DECLINED",
                          {"card": card, "amount": 12.5, "tags": ["a", "b"], "retry": False})


def level3():
    raise ConnectionResetError("peer reset")


def level2():
    level3()


def fetch_user():
    try:
        level2()
    except ConnectionResetError as e:
        raise AppException("cannot load user", "UPSTREAM") from e


class ReportTest(support.ErrqdCase):

    def test_app_exception_code_and_details(self):
        try:
            charge("4242")
        except AppException as e:
            self.assertTrue(errq.report(e, details={"order": 7}))
            self.assertFalse(errq.report(e), "an exception is reported once")
        rows = self.flushed_events()
        self.assertEqual(len(rows), 1, rows)
        ev = rows[0]
        self.assertEqual(ev["error_type"], __name__ + ".PaymentDeclined")
        self.assertEqual(ev["message"], "card declined")
        self.assertEqual(ev["error_code"], "DECLINED")
        self.assertTrue(ev["handled"])
        d = ev["details"]
        self.assertEqual(d["card"], "4242")
        self.assertEqual(d["amount"], "12.5")
        self.assertEqual(d["tags"], '["a", "b"]')
        self.assertEqual(d["retry"], "false")
        self.assertEqual(d["order"], "7")
        self.assertEqual(d["pid"], str(os.getpid()))
        fr = ev["frames"]
        self.assertEqual([f["function"] for f in fr[-2:]],
                         ["ReportTest.test_app_exception_code_and_details", "charge"])
        self.assertEqual(fr[-1]["module"], __name__)
        self.assertEqual(fr[-1]["file"], os.path.abspath(__file__))
        self.assertTrue(fr[-1]["in_app"])
        self.assertGreater(fr[-1]["line"], 0)

    def test_awkward_exceptions_and_values(self):
        class Unprintable(Exception):
            def __str__(self):
                raise RuntimeError("no str for you")

        class BadDetails(Exception):
            details = property(lambda self: 1 / 0)

        class Cyclic(Exception):
            pass
        cyc = {"self": None}
        cyc["self"] = cyc
        big = list(range(100000))
        try:
            raise Unprintable()
        except Unprintable as e:
            self.assertTrue(errq.report(e, details={"cyclic": cyc, "big": big, 3: "int key",
                                                    "nul": "a\x00b", "long": "x" * 5000}))
        failed0 = errq.stats()["py_build_failed"]
        self.assertFalse(errq.report(BadDetails("details raise")))  # counted, not raised
        self.assertEqual(errq.stats()["py_build_failed"], failed0 + 1)
        rows = self.flushed_events()
        self.assertEqual(len(rows), 1, rows)
        d = rows[0]["details"]
        self.assertEqual(rows[0]["message"], "<unprintable Unprintable>")
        self.assertTrue(d["big"].startswith("[0, 1, 2"), d["big"][:40])
        self.assertLessEqual(len(d["big"].encode()), 1024)
        self.assertEqual(d["3"], "int key")
        self.assertEqual(d["nul"], "a\ufffdb")
        self.assertEqual(len(d["long"]), 1024)
        self.assertIn("self", d["cyclic"])

    def test_builtin_type_and_stdlib_frames(self):
        import json
        try:
            json.loads("{not json")
        except ValueError as e:
            errq.report(e, task="parse", attempt=2, handled=False, fingerprint="fp-1")
        ev = self.flushed_events()[0]
        self.assertEqual(ev["error_type"], "json.decoder.JSONDecodeError")
        self.assertEqual(ev["task"], "parse")
        self.assertEqual(ev["attempt"], 2)
        self.assertFalse(ev["handled"])
        ins = [(f["module"], f["in_app"]) for f in ev["frames"]]
        self.assertIn((__name__, True), ins)
        self.assertIn(("json.decoder", False), ins)  # the standard library is not the app's
        try:
            raise ValueError("plain")
        except ValueError as e:
            errq.report(e)
        types = sorted(r["error_type"] for r in self.flushed_events())
        self.assertEqual(types, ["ValueError", "json.decoder.JSONDecodeError"])  # no builtins.

    def test_chained_exception_shows_its_cause(self):
        try:
            fetch_user()
        except AppException as e:
            errq.report(e)
        ev = self.flushed_events()[0]
        d = ev["details"]
        self.assertEqual(d["cause.0.type"], "ConnectionResetError")
        self.assertEqual(d["cause.0.message"], "peer reset")
        self.assertEqual(d["cause.0.via"], "cause")
        self.assertTrue(d["cause.0.at"].startswith("level3 ("), d["cause.0.at"])
        # the root cause's frames come last: the innermost app frame is where it was raised
        self.assertEqual(ev["frames"][-1]["function"], "level3")
        self.assertIn("fetch_user", [f["function"] for f in ev["frames"]])

    def test_implicit_context_and_grouping(self):
        def handler(i):
            try:
                {}["k%d" % i]
            except KeyError:
                raise RuntimeError("handler %d failed" % i)
        for i in range(2):
            try:
                handler(i)
            except RuntimeError as e:
                errq.report(e)
        rows = self.flushed_events()
        self.assertEqual(len(rows), 2)
        for r in rows:
            self.assertEqual(r["details"]["cause.0.via"], "context")
            self.assertEqual(r["details"]["cause.0.type"], "KeyError")
        self.assertEqual(rows[0]["fingerprint"], rows[1]["fingerprint"])

    def test_gather_reports_every_failure(self):
        async def ok():
            return 1

        async def bad(i):
            await asyncio.sleep(0)
            raise AppException("item %d failed" % i, "ITEM")

        async def main():
            errq.asyncio.install()  # gather's own tasks are left to gather (handled)
            return await errq.gather(ok(), bad(1), bad(2), ok(), bad(3))
        res = asyncio.run(main())
        self.assertEqual(res[0], 1)
        self.assertEqual([type(r) for r in res],
                         [int, AppException, AppException, int, AppException])
        rows = self.flushed_events()
        self.assertEqual(sorted(r["message"] for r in rows),
                         ["item 1 failed", "item 2 failed", "item 3 failed"])
        for r in rows:
            self.assertTrue(r["handled"])
            self.assertEqual(r["task"], "ReportTest.test_gather_reports_every_failure.<locals>.bad")

    def test_retry_reports_each_attempt(self):
        calls = []

        @errq.retry(max_attempts=4, delay=0.001, backoff=2.0, exceptions=(ConnectionError,))
        async def flaky():
            calls.append(1)
            raise ConnectionRefusedError("attempt %d refused" % len(calls))

        async def main():
            errq.asyncio.install()
            await flaky()
        with self.assertRaises(ConnectionRefusedError):
            asyncio.run(main())
        self.assertEqual(len(calls), 4)
        rows = sorted(self.flushed_events(), key=lambda r: r["attempt"])
        self.assertEqual([(r["attempt"], r["handled"]) for r in rows],
                         [(1, True), (2, True), (3, True), (4, False)])
        self.assertEqual({r["task"] for r in rows},
                         {"ReportTest.test_retry_reports_each_attempt.<locals>.flaky"})
        self.assertEqual(rows[0]["details"]["retry.max_attempts"], "4")

    def test_retry_sync_succeeds_after_failures(self):
        n = []

        @errq.retry(max_attempts=3, delay=0, task="sync-op")
        def sometimes():
            n.append(1)
            if len(n) < 3:
                raise OSError("not yet")
            return "done"
        self.assertEqual(sometimes(), "done")
        rows = self.flushed_events()
        self.assertEqual(sorted((r["attempt"], r["handled"], r["task"]) for r in rows),
                         [(1, True, "sync-op"), (2, True, "sync-op")])

    def test_retry_leaves_other_exceptions_alone(self):
        @errq.retry(max_attempts=3, delay=0, exceptions=(ConnectionError,))
        def wrong():
            raise TypeError("not retried")
        with self.assertRaises(TypeError):
            wrong()
        self.assertEqual(self.flushed_events(), [])
        with self.assertRaisesRegex(ValueError, "max_attempts 0 is less than 1"):
            errq.retry(max_attempts=0)

    def test_monitor_reports_and_counts(self):
        @errq.monitor
        async def step(fail):
            if fail:
                raise LookupError("step failed")
            return "ok"

        @errq.monitor(task="sync-step")
        def sync_step():
            raise KeyboardInterrupt  # not a failure: neither reported nor counted

        async def main():
            errq.asyncio.install()
            self.assertEqual(await step(False), "ok")
            with self.assertRaises(LookupError):
                await step(True)
            t = asyncio.create_task(step(True))  # monitor and the task hook: one event
            await asyncio.wait([t])
            await asyncio.sleep(0.01)
            t.exception()
        asyncio.run(main())
        with self.assertRaises(KeyboardInterrupt):
            sync_step()
        rows = self.flushed_events()
        self.assertEqual(len(rows), 2, rows)
        for r in rows:
            self.assertEqual(r["task"], "ReportTest.test_monitor_reports_and_counts.<locals>.step")
            self.assertFalse(r["handled"])
        st = errq.stats()
        self.assertEqual(st["outcomes_recorded"], 3)

    def test_logging_handler(self):
        log = logging.getLogger("py.test.logging")
        log.propagate = False
        h = errq.logging.ErrqHandler()
        log.addHandler(h)
        try:
            try:
                raise AppException("db down", "DB")
            except AppException:
                log.exception("request %s failed", "r-1")
            log.error("no exception here")
            try:
                raise ValueError("only a warning")
            except ValueError:
                log.warning("warned", exc_info=True)
        finally:
            log.removeHandler(h)
        rows = self.flushed_events()
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0]["error_code"], "DB")
        self.assertEqual(rows[0]["details"]["log.logger"], "py.test.logging")
        self.assertEqual(rows[0]["details"]["log.message"], "request r-1 failed")
        self.assertTrue(rows[0]["handled"])

    def test_structlog_processor_without_structlog(self):
        import subprocess
        r = subprocess.run([sys.executable, "-c",  # importable without structlog itself
                            "import sys; sys.modules['structlog'] = None\n"
                            "import errq.structlog; print(errq.structlog.processor.__name__)"],
                           capture_output=True, text=True, cwd=os.path.dirname(support.HERE))
        self.assertEqual(r.stdout.strip(), "processor", r.stderr)
        ed = {"event": "charge failed", "order_id": 9, "logger": "pay"}
        try:
            raise TimeoutError("gateway")
        except TimeoutError:
            ed["exc_info"] = True
            out = errq.structlog.processor(None, "exception", ed)
        self.assertIs(out, ed)
        errq.structlog.processor(None, "info", {"event": "x", "exc_info": ValueError("info")})
        rows = self.flushed_events()
        self.assertEqual(len(rows), 1, rows)
        d = rows[0]["details"]
        self.assertEqual((d["log.message"], d["log.logger"], d["log.order_id"]),
                         ("charge failed", "pay", "9"))
        self.assertEqual(rows[0]["error_type"], "TimeoutError")

    def test_structlog_pipeline(self):
        try:
            import structlog
        except ImportError:
            self.skipTest("structlog is not installed (Debian: python3-structlog)")
        log = structlog.wrap_logger(
            structlog.ReturnLogger(),  # each call returns what it rendered
            processors=[structlog.processors.add_log_level, errq.structlog.processor,
                        structlog.processors.format_exc_info,
                        structlog.processors.JSONRenderer()])
        out = []
        try:
            raise AppException("ledger write failed", "LEDGER", {"shard": 3})
        except AppException:
            out.append(log.exception("settle failed", batch="b-7"))
        out.append(log.error("no exception"))
        out.append(log.info("fine", exc_info=True))
        self.assertTrue(all(isinstance(o, str) for o in out), out)  # logging itself goes on
        self.assertIn("Traceback", out[0])  # format_exc_info still saw exc_info
        rows = self.flushed_events()
        self.assertEqual(len(rows), 1, rows)
        d = rows[0]["details"]
        self.assertEqual((rows[0]["error_code"], d["shard"], d["log.message"], d["log.batch"]),
                         ("LEDGER", "3", "settle failed", "b-7"))

    def test_forked_child_reports_under_its_own_pid(self):
        try:
            raise ValueError("parent before fork")
        except ValueError as e:
            errq.report(e)
        self.assertTrue(errq.flush(support.DEADLINE))
        forks0 = errq.stats()["py_forks"]
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: a client of its own
            code = 1
            try:
                os.close(r)
                try:
                    raise ValueError("from the child")
                except ValueError as e:
                    ok = errq.report(e) and errq.flush(support.DEADLINE)
                code = 0 if ok and errq.stats()["acked"] == 1 else 2
                errq.close(5)
            finally:
                os.write(w, b"%d" % code)
                os._exit(code)
        os.close(w)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.read(r, 10), b"0")
        os.close(r)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        st = errq.stats()
        self.assertEqual((st["py_forks"] - forks0, st["py_lost_at_fork"]), (1, 0))
        try:
            raise ValueError("parent after fork")
        except ValueError as e:
            self.assertTrue(errq.report(e))
        rows = self.flushed_events()
        by_msg = {r["message"]: r["details"]["pid"] for r in rows}
        self.assertEqual(by_msg, {"parent before fork": str(os.getpid()),
                                  "from the child": str(pid),
                                  "parent after fork": str(os.getpid())})

    def test_fork_while_threads_report(self):
        if "libasan" in os.environ.get("LD_PRELOAD", ""):
            # GCC 12's ASan allocator is not fork-safe: a child forked while the reporter
            # thread allocates can inherit its lock held (1 run in 20 under load, 2026-12-06).
            # The plain build runs this test; test_close_then_fork (C) is skipped likewise.
            self.skipTest("fork while another thread allocates: not safe under ASan")
        import threading
        stop = threading.Event()
        ok = [0]

        def reporter():
            i = 0
            while not stop.is_set() or i < 200:
                try:
                    raise KeyError("thread report %d" % i)
                except KeyError as e:
                    ok[0] += errq.report(e)  # False only while a fork restarts the client
                i += 1
        t = threading.Thread(target=reporter)
        t.start()
        children = []
        for k in range(3):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    try:
                        raise ValueError("child %d" % k)
                    except ValueError as e:
                        code = 0 if errq.report(e) and errq.flush(support.DEADLINE) else 2
                    errq.close(5)
                finally:
                    os._exit(code)
            children.append(pid)
        stop.set()
        t.join(support.DEADLINE)
        for pid in children:
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        rows = self.flushed_events()
        from_children = sorted(r["message"] for r in rows if r["message"].startswith("child"))
        self.assertEqual(from_children, ["child 0", "child 1", "child 2"])
        self.assertEqual(len(rows) - 3, ok[0])  # every report the parent queued is stored
        self.assertEqual(errq.stats()["py_lost_at_fork"], 0)


class ApiTest(unittest.TestCase):
    """What needs liberrq but no collector."""

    def test_missing_library_names_both_places(self):
        import subprocess
        code = ("import errq\n"
                "try:\n    errq.init(service='x')\n"
                "except errq.LibraryNotFound as e:\n    print(e)\n")
        env = dict(os.environ, ERRQ_LIBRARY="/nonexistent/liberrq.so")
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, cwd=os.path.dirname(support.HERE))
        self.assertIn("ERRQ_LIBRARY='/nonexistent/liberrq.so'", r.stdout)
        env.pop("ERRQ_LIBRARY")
        env["LD_LIBRARY_PATH"] = ""
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, cwd=os.path.dirname(support.HERE))
        if "find_library" in r.stdout:  # not installed system-wide here
            self.assertIn("ERRQ_LIBRARY is not set", r.stdout)
            self.assertIn("ctypes.util.find_library('errq')", r.stdout)

    def test_bad_options_refused(self):
        with self.assertRaisesRegex(TypeError, "unknown option 'queue_size'"):
            errq.init(service="x", queue_size=10)
        with self.assertRaisesRegex(errq.ErrqError, "option 'queue_capacity' 0: invalid argument"):
            errq.init(service="x", queue_capacity=0)
        with self.assertRaisesRegex(TypeError, "option 'queue_capacity': '10' is not an int"):
            errq.init(service="x", queue_capacity="10")
        with self.assertRaisesRegex(TypeError, "option 'debug': 'no' is not a bool"):
            errq.init(service="x", debug="no")
        with self.assertRaisesRegex(errq.ErrqError, "option 'spill_wait_ms' 60001: invalid argument"):
            errq.init(service="x", spill_wait_ms=60001)
        with self.assertRaisesRegex(errq.ErrqError, "service '" + "s" * 129 + "': invalid argument"):
            errq.init(service="s" * 129)
        with self.assertRaisesRegex(ValueError, "init needs service="):
            errq.init()
        self.assertFalse(errq.is_initialized())
        self.assertFalse(errq.report(ValueError("no client")))
        self.assertFalse(errq.record_outcome("t", True))
        self.assertIsNone(errq.stats())


if __name__ == "__main__":
    unittest.main()
