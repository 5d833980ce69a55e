"""monitor, gather and retry: the decorators and helpers a service wraps its work in."""

import asyncio as _asyncio
import functools
import inspect
import time
import weakref

from . import _client

# Tasks whose exceptions errq.gather hands to its caller: the task-factory hook of
# errq.asyncio.install leaves them to gather, which reports them as handled.
gathered = weakref.WeakSet()


def _name_of(fn):
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def monitor(fn=None, *, task=None):
    """Decorator for coroutine functions and plain functions: an exception that propagates
    out of a call is reported (handled=False) and every call records an outcome (ok or
    failed) under task (default: the function's qualified name).  Cancellation,
    KeyboardInterrupt, SystemExit and StopAsyncIteration pass through unreported and
    uncounted.  Use as @errq.monitor or @errq.monitor(task="charge")."""
    if fn is None:
        return lambda f: monitor(f, task=task)
    name = task or _name_of(fn)

    def failed(e):
        if _client.is_failure(e):
            _client.report(e, task=name, handled=False)
            _client.record_outcome(name, False)

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def amonitored(*args, **kwargs):
            try:
                result = await fn(*args, **kwargs)
            except BaseException as e:
                failed(e)
                raise
            _client.record_outcome(name, True)
            return result
        return amonitored

    @functools.wraps(fn)
    def monitored(*args, **kwargs):
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:
            failed(e)
            raise
        _client.record_outcome(name, True)
        return result
    return monitored


def _label(aw):
    if isinstance(aw, _asyncio.Task):
        return _client.task_label(aw)[0]
    return (getattr(aw, "__qualname__", None) or getattr(aw, "__name__", None)
            or type(aw).__qualname__)


async def gather(*aws, task=None):
    """asyncio.gather(*aws, return_exceptions=True) that reports every exception among the
    results (handled=True: the caller has them; task: the awaitable's name unless given)
    and returns the results unchanged.  Cancellations in the results are not reported."""
    loop = _asyncio.get_running_loop()
    futs = []
    labels = []
    for aw in aws:
        labels.append(task or _label(aw))
        f = _asyncio.ensure_future(aw, loop=loop)
        if isinstance(f, _asyncio.Task):
            gathered.add(f)
        futs.append(f)
    results = await _asyncio.gather(*futs, return_exceptions=True)
    for label, r in zip(labels, results):
        if _client.is_failure(r):
            _client.report(r, task=label, handled=True)
    return results


def retry(max_attempts=3, delay=1.0, backoff=2.0, exceptions=(Exception,), task=None,
          max_delay=None):
    """Decorator: calls the function up to max_attempts times while it raises one of
    exceptions, sleeping delay * backoff**(n-1) seconds (at most max_delay) after the n-th
    failure (asyncio.sleep for a coroutine function, time.sleep otherwise).  Each failed
    attempt is reported with its attempt number: handled=True while another attempt
    follows, handled=False for the last one, which is then raised."""
    if max_attempts < 1:
        raise ValueError("errq: retry: max_attempts %r is less than 1" % (max_attempts,))
    if delay < 0 or backoff < 1:
        raise ValueError("errq: retry: delay %r must be >= 0 and backoff %r >= 1"
                         % (delay, backoff))
    if isinstance(exceptions, type):
        exceptions = (exceptions,)
    exceptions = tuple(exceptions)

    def wait_for(n):
        d = delay * (backoff ** (n - 1))
        return d if max_delay is None else min(d, max_delay)

    def deco(fn):
        name = task or _name_of(fn)

        def failed(e, n):
            last = n >= max_attempts
            _client.report(e, task=name, attempt=n, handled=not last,
                           _extra={"retry.max_attempts": max_attempts})
            return last

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def aretrying(*args, **kwargs):
                n = 1
                while True:
                    try:
                        return await fn(*args, **kwargs)
                    except exceptions as e:
                        if not _client.is_failure(e) or failed(e, n):
                            raise
                    await _asyncio.sleep(wait_for(n))
                    n += 1
            return aretrying

        @functools.wraps(fn)
        def retrying(*args, **kwargs):
            n = 1
            while True:
                try:
                    return fn(*args, **kwargs)
                except exceptions as e:
                    if not _client.is_failure(e) or failed(e, n):
                        raise
                time.sleep(wait_for(n))
                n += 1
        return retrying
    return deco
