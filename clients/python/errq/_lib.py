"""ctypes bindings to liberrq (client/include/errq.h), loaded on first use.

Only what the package calls is declared.  Every prototype is spelled out (argtypes and
restype) so that a pointer is never truncated to an int and a bad argument fails in Python,
not in C.  CDLL (not PyDLL) releases the GIL around each foreign call.
"""

import ctypes
import ctypes.util
import os
import threading

# errq_errno_t (ERRQ_ERRNO_MAP in errq.h); only appended to, never renumbered.
OK = 0
EINVAL = -1
ENOMEM = -2
EQUEUEFULL = -3
ETOOBIG = -4
ECLOSED = -5
ETIMEDOUT = -6
ETHREAD = -7
EFORKED = -8
EIO = -9

# errq_stats_t, in declaration order; the struct is 64 uint64_t (the rest reserved).
STATS_FIELDS = (
    "queued", "pending", "pending_bytes", "sent", "acked", "accepted", "duplicates",
    "rejected", "dropped_queue_full", "dropped_too_big", "dropped_closed", "dropped_invalid",
    "dropped_nomem", "truncated", "batches_sent", "batches_acked", "resends", "reconnects",
    "stream_failures", "connected", "dropped_forked", "spooled", "spool_replayed",
    "dropped_spool", "spool_corrupt", "spool_errors", "spool_files", "spool_bytes",
    "circuit_state", "circuit_opens", "consecutive_failures", "ack_timeouts",
    "outcomes_recorded", "outcomes_acked", "outcomes_dropped", "rejected_quota",
    "spill_waits",
)


class Stats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in STATS_FIELDS] + [
        ("reserved_", ctypes.c_uint64 * (64 - len(STATS_FIELDS)))
    ]


class LibraryNotFound(ImportError):
    """liberrq could not be loaded (see the message for where it was looked for)."""


_lock = threading.Lock()
_lib = None

_p = ctypes.c_void_p
_s = ctypes.c_char_p
_i = ctypes.c_int
_u = ctypes.c_uint
_sz = ctypes.c_size_t
_b = ctypes.c_bool

_PROTOS = {
    "errq_strerror": (_s, [_i]),
    "errq_err_name": (_s, [_i]),
    "errq_version": (_s, []),
    "errq_options_new": (_p, []),
    "errq_options_free": (None, [_p]),
    "errq_options_set_collector": (_i, [_p, _s]),
    "errq_options_set_service": (_i, [_p, _s]),
    "errq_options_set_environment": (_i, [_p, _s]),
    "errq_options_set_release": (_i, [_p, _s]),
    "errq_options_set_host": (_i, [_p, _s]),
    "errq_options_set_queue_capacity": (_i, [_p, _sz]),
    "errq_options_set_queue_bytes": (_i, [_p, _sz]),
    "errq_options_set_max_batch_events": (_i, [_p, _sz]),
    "errq_options_set_max_batch_bytes": (_i, [_p, _sz]),
    "errq_options_set_linger_ms": (_i, [_p, _u]),
    "errq_options_set_max_inflight": (_i, [_p, _u]),
    "errq_options_set_reconnect_backoff": (_i, [_p, _u, _u]),
    "errq_options_set_debug": (_i, [_p, _b]),
    "errq_options_set_circuit_threshold": (_i, [_p, _u]),
    "errq_options_set_ack_timeout": (_i, [_p, _u]),
    "errq_options_set_spill_wait": (_i, [_p, _u]),
    "errq_options_set_outcome_interval": (_i, [_p, _u]),
    "errq_options_set_spool_dir": (_i, [_p, _s]),
    "errq_options_set_spool_max_bytes": (_i, [_p, ctypes.c_uint64]),
    "errq_options_set_tls": (_i, [_p, _s, _s, _s]),
    "errq_options_set_token": (_i, [_p, _s]),
    "errq_event_new": (_p, [_s, _s, _s]),
    "errq_event_free": (None, [_p]),
    "errq_event_set_code": (_i, [_p, _s]),
    "errq_event_set_task": (_i, [_p, _s]),
    "errq_event_set_environment": (_i, [_p, _s]),
    "errq_event_set_fingerprint": (_i, [_p, _s]),
    "errq_event_add_detail": (_i, [_p, _s, _s]),
    "errq_event_add_frame": (_i, [_p, _s, _s, ctypes.c_uint32, _s, _b]),
    "errq_event_set_attempt": (_i, [_p, ctypes.c_uint32]),
    "errq_event_set_handled": (_i, [_p, _b]),
    "errq_event_set_time_ns": (_i, [_p, ctypes.c_uint64]),
    "errq_client_new": (_p, [_p]),
    "errq_report": (_i, [_p, _p]),
    "errq_record_outcome": (_i, [_p, _s, _b]),
    "errq_client_flush": (_i, [_p, _i]),
    "errq_client_stats": (_i, [_p, ctypes.POINTER(Stats)]),
    "errq_client_close": (_sz, [_p, _i]),
    "errq_client_close_stats": (_sz, [_p, _i, ctypes.POINTER(Stats)]),
}


def _candidates():
    env = os.environ.get("ERRQ_LIBRARY")
    if env:
        return env, [env]
    found = ctypes.util.find_library("errq")
    # find_library gives a soname ("liberrq.so.0") that dlopen resolves on the library path
    return None, [found] if found else []


def load():
    """The loaded library (an object with the errq_* functions), loading it the first time.

    Looks at ERRQ_LIBRARY (a path to liberrq.so), then ctypes.util.find_library("errq")
    (the system library path, as ldconfig knows it).  Raises LibraryNotFound naming both.
    """
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        env, names = _candidates()
        if not names:
            raise LibraryNotFound(
                "errq: cannot find liberrq: ERRQ_LIBRARY is not set and "
                "ctypes.util.find_library('errq') found nothing on the system library path; "
                "install liberrq (make install, then ldconfig) or set ERRQ_LIBRARY to the "
                "path of liberrq.so")
        try:
            lib = ctypes.CDLL(names[0])
        except OSError as e:
            where = ("ERRQ_LIBRARY='%s'" % env) if env else (
                "'%s' (from ctypes.util.find_library('errq'); ERRQ_LIBRARY is not set)" % names[0])
            raise LibraryNotFound("errq: cannot load liberrq from %s: %s" % (where, e)) from None
        for name, (res, args) in _PROTOS.items():
            try:
                fn = getattr(lib, name)
            except AttributeError:
                raise LibraryNotFound(
                    "errq: '%s' lacks '%s': liberrq is older than this package needs"
                    % (names[0], name)) from None
            fn.restype = res
            fn.argtypes = args
        _lib = lib
        return lib


def strerror(lib, rc):
    return lib.errq_strerror(rc).decode("ascii", "replace")
