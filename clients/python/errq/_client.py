"""The process's client: init, report, record_outcome, flush, stats, close; fork.

Threading protocol.  One liberrq client per process, held by a _Handle.  Every call into it
(report, record_outcome, flush, stats) borrows the handle (_Handle.borrow: a count under the
handle's lock) for exactly the foreign call; close retires the handle (no new borrower, then
waits for the borrowers to return) before errq_client_close, which must be the last call on
a liberrq client.  _state_lock serialises init, close and the fork hooks.  ctypes releases
the GIL around every foreign call, so a flush in one thread lets the others run.

fork.  liberrq makes the parent's client inert in a child, and refuses to start a working
one in a child of a process whose client was alive at the fork (gRPC cannot be used there).
So os.register_at_fork hooks close the parent's client just before the fork (after a flush
of at most fork_flush_timeout; with a spool what is left goes to disk and is sent again by
the client that follows) and start a new one with the same settings after it, in the parent
and in the child.  The child's client runs without the spool (the parent takes the spool's
lock back; a directory serves one client).  See docs/python.md, "fork".
"""

import asyncio as _asyncio
import atexit
import builtins
import os
import re
import threading

from . import _event
from . import _lib

# init's **options: name -> (liberrq's setter, the Python type it takes); two more,
# reconnect_backoff_ms and tls, take tuples and are set in _new_client.
_OPTIONS = {
    "queue_capacity": ("errq_options_set_queue_capacity", int),
    "queue_bytes": ("errq_options_set_queue_bytes", int),
    "max_batch_events": ("errq_options_set_max_batch_events", int),
    "max_batch_bytes": ("errq_options_set_max_batch_bytes", int),
    "linger_ms": ("errq_options_set_linger_ms", int),
    "max_inflight": ("errq_options_set_max_inflight", int),
    "circuit_threshold": ("errq_options_set_circuit_threshold", int),
    "ack_timeout_ms": ("errq_options_set_ack_timeout", int),
    "spill_wait_ms": ("errq_options_set_spill_wait", int),
    "outcome_interval": ("errq_options_set_outcome_interval", int),
    "spool_max_bytes": ("errq_options_set_spool_max_bytes", int),
    "debug": ("errq_options_set_debug", bool),
    "host": ("errq_options_set_host", str),
    "token": ("errq_options_set_token", str),
}

_DEFAULT_TASK = re.compile(r"Task-\d+\Z")
_MISSING = object()


class ErrqError(Exception):
    """A liberrq call refused its arguments (a bad option, the client cannot start)."""


class _Handle:
    """A liberrq client pointer and the count of threads inside a call on it."""

    __slots__ = ("ptr", "users", "retired", "cv")

    def __init__(self, ptr):
        self.ptr = ptr
        self.users = 0
        self.retired = False
        self.cv = threading.Condition(threading.Lock())

    def borrow(self):
        with self.cv:
            if self.retired:
                return None
            self.users += 1
            return self.ptr

    def give_back(self):
        with self.cv:
            self.users -= 1
            if self.retired and not self.users:
                self.cv.notify_all()

    def retire(self):
        """No new borrower; returns once the current ones are out of liberrq."""
        with self.cv:
            self.retired = True
            while self.users:
                self.cv.wait()
        return self.ptr


_state_lock = threading.RLock()
_handle = None        # the live _Handle, or None
_config = None        # init's arguments, to start the same client again after a fork
_pid_str = str(os.getpid())
_atexit_registered = False
# The package's own counters (liberrq's reset with each client it starts): reports that found
# no client (before init, after close, during a fork's restart), reports an exception object
# broke (its __str__, its details), events lost when the parent's client closed at a fork,
# and forks.  Guarded by _count_lock.
_counts = {"py_no_client": 0, "py_build_failed": 0, "py_lost_at_fork": 0, "py_forks": 0}
_count_lock = threading.Lock()
_fork_registered = False


def _count(key, n=1):
    with _count_lock:
        _counts[key] += n


def _check(lib, rc, what):
    if rc != _lib.OK:
        raise ErrqError("errq: %s: %s" % (what, _lib.strerror(lib, rc)))


def _new_client(lib, cfg, spool=True):
    o = lib.errq_options_new()
    if not o:
        raise MemoryError("errq: cannot allocate client options")
    try:
        def s(fn, value, what):
            _check(lib, getattr(lib, fn)(o, _event.text(value, 1 << 16)), what)

        s("errq_options_set_collector", cfg["addr"], "addr '%s'" % cfg["addr"])
        s("errq_options_set_service", cfg["service"], "service '%s'" % cfg["service"])
        if cfg["environment"] is not None:
            s("errq_options_set_environment", cfg["environment"],
              "environment '%s'" % cfg["environment"])
        if cfg["release"] is not None:
            s("errq_options_set_release", cfg["release"], "release '%s'" % cfg["release"])
        if spool and cfg["spool_dir"]:
            s("errq_options_set_spool_dir", os.fspath(cfg["spool_dir"]),
              "spool_dir '%s'" % cfg["spool_dir"])
        for name, value in cfg["options"].items():
            if name == "reconnect_backoff_ms":
                lo, hi = value
                _check(lib, lib.errq_options_set_reconnect_backoff(o, int(lo), int(hi)),
                       "option 'reconnect_backoff_ms' %r" % (value,))
                continue
            if name == "tls":
                ca, cert, key = (tuple(value) + (None, None, None))[:3]
                enc = [None if p is None else os.fsencode(p) for p in (ca, cert, key)]
                _check(lib, lib.errq_options_set_tls(o, *enc), "option 'tls' %r" % (value,))
                continue
            setter, conv = _OPTIONS[name]
            if not isinstance(value, conv) or (conv is int and isinstance(value, bool)):
                raise TypeError("errq: option '%s': %r is not %s"
                                % (name, value, {int: "an int", bool: "a bool",
                                                 str: "a str"}[conv]))
            arg = _event.text(value, 1 << 16) if conv is str else value
            if conv is int and value < 0:
                raise ErrqError("errq: option '%s' %r: invalid argument" % (name, value))
            _check(lib, getattr(lib, setter)(o, arg), "option '%s' %r" % (name, value))
    except BaseException:
        lib.errq_options_free(o)
        raise
    c = lib.errq_client_new(o)  # takes o, also on failure
    if not c:
        raise ErrqError("errq: cannot start the client (out of memory or no thread)")
    return c


def init(addr="127.0.0.1:4770", service=None, environment=None, release=None,
         spool_dir=None, in_app_include=(), in_app_exclude=(), close_timeout=2.0,
         fork_flush_timeout=1.0, **options):
    """Starts the process's client (replacing one started before: that one is closed with
    close_timeout).  See docs/python.md for every argument and option."""
    global _handle, _config, _atexit_registered, _fork_registered
    if not service or not isinstance(service, str):
        raise ValueError("errq: init needs service='NAME' (the service every event is of)")
    for name in options:
        if name not in _OPTIONS and name not in ("reconnect_backoff_ms", "tls"):
            raise TypeError("errq: unknown option '%s' (known: %s)"
                            % (name, ", ".join(sorted(list(_OPTIONS) +
                                                      ["reconnect_backoff_ms", "tls"]))))
    if close_timeout is not None and not close_timeout >= 0:
        raise ValueError("errq: close_timeout %r must be >= 0 seconds or None" % (close_timeout,))
    if not fork_flush_timeout >= 0:
        raise ValueError("errq: fork_flush_timeout %r must be >= 0 seconds"
                         % (fork_flush_timeout,))
    lib = _lib.load()
    cfg = dict(addr=addr, service=service, environment=environment, release=release,
               spool_dir=spool_dir, options=dict(options), close_timeout=close_timeout,
               fork_flush_timeout=float(fork_flush_timeout))
    with _state_lock:
        if _handle is not None:  # first: the new client may want the same spool directory
            _close_locked(_config["close_timeout"] if _config else 2.0)
            _config = None
        c = _new_client(lib, cfg)
        _event.in_app_include = tuple(in_app_include)
        _event.in_app_exclude = tuple(in_app_exclude)
        _event.clear_caches()
        _config = cfg
        _handle = _Handle(c)
        if not _atexit_registered:
            atexit.register(_at_exit)
            _atexit_registered = True
        if not _fork_registered and hasattr(os, "register_at_fork"):
            os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent,
                                after_in_child=_after_fork_child)
            _fork_registered = True


def _close_locked(timeout):
    global _handle
    h, _handle = _handle, None
    if h is None:
        return 0
    ptr = h.retire()
    ms = -1 if timeout is None else max(0, int(timeout * 1000))
    return _lib.load().errq_client_close(ptr, ms)


def close(timeout=5.0):
    """Delivers what is queued for up to timeout seconds (None: no limit), then stops the
    client.  Returns the number of events lost (neither delivered nor spooled).  Blocking:
    from a coroutine, run it in an executor."""
    global _config
    with _state_lock:
        lost = _close_locked(timeout)
        _config = None
        return lost


def _at_exit():
    with _state_lock:
        if _handle is not None:
            _close_locked(_config["close_timeout"] if _config else 2.0)


def flush(timeout=5.0):
    """Waits until every event reported so far is answered, spooled or dropped.  True when
    it got there within timeout seconds (None: no limit).  Blocking: from a coroutine, run
    it in an executor."""
    h = _handle
    ptr = h.borrow() if h is not None else None
    if ptr is None:
        return True
    try:
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        return _lib.load().errq_client_flush(ptr, ms) == _lib.OK
    finally:
        h.give_back()


def stats():
    """liberrq's counters (errq_stats_t, since the current client started) and the
    package's own (py_*, since the process started) as a dict; None when no client runs."""
    h = _handle
    ptr = h.borrow() if h is not None else None
    if ptr is None:
        return None
    try:
        st = _lib.Stats()
        _lib.load().errq_client_stats(ptr, st)
    finally:
        h.give_back()
    out = {name: getattr(st, name) for name in _lib.STATS_FIELDS}
    with _count_lock:
        out.update(_counts)
    return out


def is_initialized():
    return _handle is not None


# ---- reporting

_MARK = "_errq_reported"

# Not failures: a cancelled task, an interrupted or exiting process, an ended async iterator.
NOT_FAILURES = (_asyncio.CancelledError, KeyboardInterrupt, SystemExit, StopAsyncIteration,
                GeneratorExit)


def is_failure(exc):
    return isinstance(exc, BaseException) and not isinstance(exc, NOT_FAILURES)


def already_reported(exc):
    return getattr(exc, _MARK, False) is True


_GROUP = getattr(builtins, "BaseExceptionGroup", None)  # 3.11+


def _leaves_reported(group, depth=0):
    """True when every exception in an exception group (nested ones too) was reported."""
    if depth > 8:  # groups nest rarely; a deeper one is not worth the walk
        return False
    for e in group.exceptions:
        if _GROUP is not None and isinstance(e, _GROUP):
            if not _leaves_reported(e, depth + 1):
                return False
        elif getattr(e, _MARK, False) is not True:
            return False
    return True


def _mark(exc):
    """Marks exc as reported; False when another path did so first, or when exc is an
    exception group (TaskGroup's) whose exceptions were all reported already: the group
    would tell nothing new."""
    if getattr(exc, _MARK, False) is True:
        return False
    if _GROUP is not None and isinstance(exc, _GROUP) and _leaves_reported(exc):
        return False
    try:
        setattr(exc, _MARK, True)
    except Exception:  # a frozen dataclass, a __setattr__ that raises: it may be reported twice
        pass
    return True


def coro_name(coro):
    if coro is None:
        return None
    return (getattr(coro, "__qualname__", None) or getattr(coro, "__name__", None)
            or type(coro).__qualname__)


def task_label(task, cname=None):
    """(label, details) for an asyncio task: its name when it was given one, else its
    coroutine's qualified name (default names, Task-12, would make one group per task).
    cname: the coroutine's name when the caller took it at the task's creation (a done
    task may have dropped its coroutine: CPython 3.13 does)."""
    name = task.get_name()
    if cname is None:
        # Task._coro first: CPython 3.12.1's get_coro() crashes on a task that completed
        # during its eager start (it returns its cleared, NULL coroutine); _coro is None.
        coro = getattr(task, "_coro", _MISSING)
        if coro is _MISSING:
            coro = task.get_coro()
        cname = coro_name(coro)
    label = name if not _DEFAULT_TASK.match(name) or not cname else cname
    details = {"asyncio.task": name}
    if cname:
        details["asyncio.coroutine"] = cname
    return label, details


def _current_task_label():
    try:
        t = _asyncio.current_task()
    except RuntimeError:  # no running loop in this thread
        return None, None
    if t is None:
        return None, None
    return task_label(t)


def report(exc, task=None, details=None, attempt=None, handled=None, fingerprint=None,
           environment=None, _extra=None):
    """Reports exc (an exception instance) and returns at once: True when liberrq queued it,
    False when it was dropped (no client, already reported, queue full: see stats()).
    Never raises for a reporting problem.  handled None means True (the caller has it).
    fingerprint, when given, is the event's group within its service: every event with it is
    one group, whatever its exception type, message or stack."""
    h = _handle
    if not isinstance(exc, BaseException):
        return False
    if h is None:
        _count("py_no_client")
        return False
    if not _mark(exc):
        return False
    extra = {"pid": _pid_str}
    label, tdetails = _current_task_label()
    if tdetails:
        extra.update(tdetails)
    if task is None:
        task = label
    if _extra:
        extra.update(_extra)
    lib = _lib.load()
    try:
        ev = _event.build(lib, exc, task=task, details=details, attempt=attempt,
                          handled=True if handled is None else handled,
                          fingerprint=fingerprint, environment=environment, extra=extra)
    except Exception:  # a broken exception object must not break its reporter
        _count("py_build_failed")
        return False
    if not ev:
        _count("py_build_failed")
        return False
    ptr = h.borrow()
    if ptr is None:
        lib.errq_event_free(ev)
        _count("py_no_client")
        return False
    try:
        return lib.errq_report(ptr, ev) == _lib.OK  # takes ev on every path
    finally:
        h.give_back()


def record_outcome(task, ok):
    """Counts one call of task as succeeded (ok) or failed, for failure_rate rules.  True
    when counted."""
    h = _handle
    ptr = h.borrow() if h is not None else None
    if ptr is None:
        return False
    try:
        return _lib.load().errq_record_outcome(ptr, _event.text(task, _event.MAX_TYPE),
                                               bool(ok)) == _lib.OK
    finally:
        h.give_back()


# ---- fork

def _before_fork():
    # Taken here, released in both after-hooks: no init or close runs across the fork.
    _state_lock.acquire()
    global _handle
    if _handle is None:
        return
    h, _handle = _handle, None
    ptr = h.retire()
    lib = _lib.load()
    lib.errq_client_flush(ptr, max(0, int(_config["fork_flush_timeout"] * 1000)))
    lost = lib.errq_client_close(ptr, 0)
    _count("py_forks")
    _count("py_lost_at_fork", lost)


def _restart(spool):
    global _handle
    if _config is None:
        return
    try:
        _handle = _Handle(_new_client(_lib.load(), _config, spool=spool))
    except Exception:
        _handle = None  # settings that worked before the fork; only memory can fail here


def _after_fork_parent():
    try:
        _restart(spool=True)
    finally:
        _state_lock.release()


def _after_fork_child():
    global _state_lock, _count_lock, _pid_str
    _pid_str = str(os.getpid())
    # Another thread of the parent may have held a handle's lock at the fork: the child
    # gets fresh locks and a fresh handle (the parent's client was closed before the fork).
    _state_lock = threading.RLock()
    _count_lock = threading.Lock()
    _restart(spool=False)
