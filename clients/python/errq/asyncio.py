"""errq.asyncio.install: report the failures an asyncio service loses, with one line of set-up.

install(loop) chains two hooks of the loop, never replacing what is there:

- the task factory: every task made from then on (loop.create_task, asyncio.create_task,
  ensure_future, gather, TaskGroup, with or without a previous factory such as
  asyncio.eager_task_factory) gets a done-callback that reports the task's exception as soon
  as the task fails (handled=False, task = its name, or its coroutine's name when the name
  is a default Task-N), whether or not anyone awaits it later;
- the exception handler: exceptions asyncio hands to it (a callback that raised, "Task
  exception was never retrieved" for a task made before install, "Future exception was
  never retrieved") are reported (handled=False), then passed on to the previous handler,
  or to loop.default_exception_handler, so logging is unchanged.

Each exception is reported once, whichever path (these, errq.monitor, errq.retry,
errq.gather, errq.report) sees it first: the exception object is marked.  The done-callback
reads the task's exception without retrieving it, so asyncio still logs "never retrieved"
as it would without errq.  CancelledError, KeyboardInterrupt, SystemExit,
StopAsyncIteration and GeneratorExit are not failures.  Tasks given to errq.gather are left
to it (it reports their exceptions as handled).
"""

import asyncio as _asyncio
import functools
import threading
import weakref

from . import _client
from . import _wrap

_MISSING = object()
_installed = weakref.WeakSet()  # loops that have the hooks
_installed_lock = threading.Lock()


def _task_exception(task):
    # Task._exception (C and Python tasks) does not mark the exception retrieved;
    # Task.exception() would, and silence asyncio's own "never retrieved" log.
    exc = getattr(task, "_exception", _MISSING)
    if exc is _MISSING:
        exc = task.exception()
    return exc


def _task_done(cname, task):
    try:
        if task.cancelled():
            return
        exc = _task_exception(task)
        if exc is None or not _client.is_failure(exc) or _client.already_reported(exc):
            return
        if task in _wrap.gathered:
            return
        label, details = _client.task_label(task, cname)
        _client.report(exc, task=label, handled=False, _extra=details)
    except Exception:  # reporting must never break the loop
        pass


def _from_context(context):
    exc = context.get("exception")
    if exc is None or not _client.is_failure(exc) or _client.already_reported(exc):
        return
    fut = context.get("task") or context.get("future")
    label, details = "", {}
    if isinstance(fut, _asyncio.Task):
        if fut in _wrap.gathered:
            return
        label, details = _client.task_label(fut)
    msg = context.get("message")
    if msg:
        details["asyncio.message"] = msg
    handle = context.get("handle")
    if handle is not None:
        details["asyncio.callback"] = repr(handle)
    _client.report(exc, task=label, handled=False, _extra=details)


def install(loop=None):
    """Adds errq's task factory and exception handler to loop (default: the running loop,
    else the current thread's event loop), chained to the ones it has.  Idempotent per loop;
    call it once per loop (one per thread).  Returns the loop."""
    if loop is None:
        try:
            loop = _asyncio.get_running_loop()
        except RuntimeError:
            loop = _asyncio.get_event_loop_policy().get_event_loop()
    with _installed_lock:
        if loop in _installed:
            return loop
        _installed.add(loop)

    prev_factory = loop.get_task_factory()

    def errq_task_factory(loop, coro, **kwargs):
        if prev_factory is None:
            task = _asyncio.Task(coro, loop=loop, **kwargs)
        else:
            task = prev_factory(loop, coro, **kwargs)
        add = getattr(task, "add_done_callback", None)
        if add is not None:
            # the coroutine's name now: a finished task may no longer hold its coroutine
            add(functools.partial(_task_done, _client.coro_name(coro)))
        return task

    errq_task_factory.errq_previous = prev_factory
    loop.set_task_factory(errq_task_factory)

    prev_handler = loop.get_exception_handler()

    def errq_exception_handler(loop, context):
        try:
            _from_context(context)
        except Exception:  # reporting must never break the loop
            pass
        if prev_handler is None:
            loop.default_exception_handler(context)
        else:
            prev_handler(loop, context)

    errq_exception_handler.errq_previous = prev_handler
    loop.set_exception_handler(errq_exception_handler)
    return loop


def is_installed(loop):
    return loop in _installed
