"""errq.asyncio.install against a real errqd: un-awaited tasks, tasks from before install,
callbacks, several loops, asyncio.Runner, an existing task factory, what is not a failure."""

import asyncio
import gc
import sys
import threading
import unittest

import support
import errq


async def fail_later(msg, exc=ValueError):
    await asyncio.sleep(0)
    raise exc(msg)


class InstallTest(support.ErrqdCase):

    def test_unawaited_task_reported_once(self):
        async def main():
            errq.asyncio.install()
            t = asyncio.create_task(fail_later("nobody awaits me"), name="orphan-worker")
            while not t.done():
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.01)  # the done-callback runs
            del t
            gc.collect()  # "never retrieved" reaches the handler too: still one event
            await asyncio.sleep(0.01)
        asyncio.run(main())
        gc.collect()
        rows = self.flushed_events()
        self.assertEqual(len(rows), 1, rows)
        ev = rows[0]
        self.assertEqual(ev["error_type"], "ValueError")
        self.assertEqual(ev["message"], "nobody awaits me")
        self.assertFalse(ev["handled"])
        self.assertEqual(ev["task"], "orphan-worker")
        self.assertEqual(ev["details"]["asyncio.task"], "orphan-worker")
        self.assertEqual(ev["details"]["asyncio.coroutine"], "fail_later")
        self.assertEqual(ev["frames"][-1]["function"], "fail_later")
        self.assertTrue(ev["frames"][-1]["in_app"])

    def test_default_task_name_becomes_coroutine_name(self):
        async def main():
            errq.asyncio.install()
            t = asyncio.create_task(fail_later("unnamed"))
            await asyncio.wait([t])
            await asyncio.sleep(0.01)
            t.exception()  # retrieved: no log, and no second event either way
        asyncio.run(main())
        rows = self.flushed_events()
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0]["task"], "fail_later")
        self.assertRegex(rows[0]["details"]["asyncio.task"], r"^Task-\d+$")

    def test_task_created_before_install_collected_unretrieved_once(self):
        logged = []

        async def main():
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(lambda lp, ctx: logged.append(ctx["message"]))
            t = asyncio.create_task(fail_later("made before install"), name="early")
            await asyncio.wait([t])
            errq.asyncio.install()
            del t
            gc.collect()
            await asyncio.sleep(0.01)
        asyncio.run(main())
        rows = self.flushed_events()
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0]["message"], "made before install")
        self.assertEqual(rows[0]["task"], "early")
        self.assertFalse(rows[0]["handled"])
        self.assertEqual(rows[0]["details"]["asyncio.message"], "Task exception was never retrieved")
        # passed on: the handler that was there still saw it, once
        self.assertEqual(logged, ["Task exception was never retrieved"])

    def test_callback_exception_reported_and_passed_on(self):
        seen = []

        def bad_callback():
            raise RuntimeError("callback broke")

        async def main():
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
            errq.asyncio.install()
            loop.call_soon(bad_callback)
            await asyncio.sleep(0.01)
        asyncio.run(main())
        rows = self.flushed_events()
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0]["error_type"], "RuntimeError")
        self.assertIn("bad_callback", rows[0]["details"]["asyncio.callback"])
        self.assertEqual(len(seen), 1)
        self.assertIsInstance(seen[0]["exception"], RuntimeError)

    def test_not_failures(self):
        async def cancelled():
            await asyncio.sleep(10)

        async def stop_iteration():
            raise StopAsyncIteration

        async def main():
            errq.asyncio.install()
            t1 = asyncio.create_task(cancelled())
            await asyncio.sleep(0)
            t1.cancel()
            t2 = asyncio.create_task(stop_iteration())
            t3 = asyncio.create_task(fail_later("the only failure"))
            await asyncio.wait([t1, t2, t3])
            await asyncio.sleep(0.01)
            for t in (t2, t3):
                t.exception()
        asyncio.run(main())
        rows = self.flushed_events()
        self.assertEqual([r["message"] for r in rows], ["the only failure"])

    def test_awaited_failure_reported_once_across_tasks(self):
        async def child():
            raise KeyError("deep")

        async def parent():
            await asyncio.create_task(child(), name="child")

        async def main():
            errq.asyncio.install()
            t = asyncio.create_task(parent(), name="parent")
            await asyncio.wait([t])
            await asyncio.sleep(0.01)
            t.exception()
        asyncio.run(main())
        rows = self.flushed_events()
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0]["task"], "child")  # the first path to see it

    def test_several_loops_one_per_thread(self):
        errors = []

        def worker(i):
            async def main():
                errq.asyncio.install()
                t = asyncio.create_task(fail_later("loop %d" % i), name="w%d" % i)
                await asyncio.wait([t])
                await asyncio.sleep(0.01)
                t.exception()
            try:
                asyncio.run(main())
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(support.DEADLINE)
        self.assertEqual(errors, [])
        rows = self.flushed_events()
        self.assertEqual(sorted(r["task"] for r in rows), ["w0", "w1", "w2"])

    def test_runner_and_idempotent_install(self):
        with asyncio.Runner() as runner:
            loop = runner.get_loop()
            self.assertIs(errq.asyncio.install(loop), loop)
            factory = loop.get_task_factory()
            errq.asyncio.install(loop)  # a second install changes nothing
            self.assertIs(loop.get_task_factory(), factory)

            async def main():
                t = asyncio.create_task(fail_later("under a Runner"), name="runner-task")
                await asyncio.wait([t])
                await asyncio.sleep(0.01)
                t.exception()
            runner.run(main())
        rows = self.flushed_events()
        self.assertEqual([(r["task"], r["message"]) for r in rows],
                         [("runner-task", "under a Runner")])

    def test_existing_task_factory_is_chained(self):
        made = []

        def counting_factory(loop, coro, **kw):
            made.append(getattr(coro, "__qualname__", "?"))
            return asyncio.Task(coro, loop=loop, **kw)

        async def main():
            loop = asyncio.get_running_loop()
            loop.set_task_factory(counting_factory)
            errq.asyncio.install()
            t = asyncio.create_task(fail_later("through two factories"), name="chained")
            await asyncio.wait([t])
            await asyncio.sleep(0.01)
            t.exception()
        asyncio.run(main())
        self.assertIn("fail_later", made)  # the previous factory still makes the tasks
        rows = self.flushed_events()
        self.assertEqual([r["task"] for r in rows], ["chained"])

    @unittest.skipUnless(hasattr(asyncio, "TaskGroup"), "asyncio.TaskGroup is new in 3.11")
    def test_task_group_reports_each_failure_once(self):
        async def main():
            errq.asyncio.install()

            async def group():
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(fail_later("first"), name="tg-a")
                    tg.create_task(fail_later("second", KeyError), name="tg-b")
                    tg.create_task(asyncio.sleep(10), name="tg-slow")  # cancelled: no event
            t = asyncio.create_task(group(), name="group-owner")
            await asyncio.wait([t])
            await asyncio.sleep(0.01)
            self.assertIsInstance(t.exception(), BaseExceptionGroup)
            # a group whose members are not all reported yet is an event of its own
            eg = ExceptionGroup("batch failed", [ValueError("x1"), OSError("x2")])
            self.assertTrue(errq.report(eg))
        asyncio.run(main())
        rows = self.flushed_events()
        self.assertEqual(len(rows), 3, rows)  # no event for group-owner's ExceptionGroup
        by_task = {r["task"]: r for r in rows}
        self.assertEqual((by_task["tg-a"]["message"], by_task["tg-b"]["error_type"]),
                         ("first", "KeyError"))
        g = [r for r in rows if r["task"].endswith(".<locals>.main")][0]  # asyncio.run's task
        self.assertEqual(g["error_type"], "ExceptionGroup")
        self.assertEqual((g["details"]["exceptions.0.type"], g["details"]["exceptions.1.message"]),
                         ("ValueError", "x2"))

    @unittest.skipUnless(hasattr(asyncio, "eager_task_factory"),
                         "asyncio.eager_task_factory is new in Python 3.12")
    def test_eager_task_factory(self):
        async def fails_at_once():
            raise ValueError("failed during eager start")

        async def main():
            loop = asyncio.get_running_loop()
            loop.set_task_factory(asyncio.eager_task_factory)
            errq.asyncio.install()
            t = asyncio.create_task(fails_at_once(), name="eager")
            self.assertTrue(t.done())  # ran eagerly: the previous factory is in use
            await asyncio.sleep(0.01)
            t.exception()
        asyncio.run(main())
        rows = self.flushed_events()
        self.assertEqual([r["task"] for r in rows], ["eager"])


if __name__ == "__main__":
    unittest.main()
