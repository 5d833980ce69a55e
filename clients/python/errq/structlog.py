"""errq.structlog.processor: a structlog processor that reports logged exceptions.

Importable without structlog installed (it imports nothing from it).  Put it before the
processors that render exceptions (format_exc_info, dict_tracebacks, ExceptionRenderer),
which consume exc_info:

    structlog.configure(processors=[..., errq.structlog.processor,
                                    structlog.processors.format_exc_info, ...])

An event logged at error, exception or critical (the method name, or a "level" key) with
exc_info (True for the exception being handled, an exception, or a sys.exc_info() tuple) is
reported as its exception, handled=True; the log event's text goes to the detail
log.message, the logger's name (a "logger" key) to log.logger, and the other keys (at most
16, values as JSON) to log.KEY.  The event dict is returned unchanged.  Never raises.
"""

import sys

from . import _client

# Keys of a structlog event dict copied as details at most (details are capped at 64).
MAX_KEYS = 16
_LEVELS = frozenset(("error", "exception", "critical", "fatal", "err"))
_SKIP = frozenset(("event", "exc_info", "level", "logger", "timestamp", "stack_info",
                   "_record", "_from_structlog"))


def _exception_of(exc_info):
    if exc_info is True:
        return sys.exc_info()[1]
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        return exc_info[1]
    return None


def processor(logger, method_name, event_dict):
    try:
        level = str(event_dict.get("level") or method_name or "").lower()
        exc_info = event_dict.get("exc_info")
        if level in _LEVELS and exc_info:
            exc = _exception_of(exc_info)
            if exc is not None and _client.is_failure(exc):
                details = {}
                if "event" in event_dict:
                    details["log.message"] = event_dict["event"]
                if "logger" in event_dict:
                    details["log.logger"] = event_dict["logger"]
                n = 0
                for k, v in event_dict.items():
                    if n >= MAX_KEYS:
                        break
                    if k in _SKIP or not isinstance(k, str):
                        continue
                    details["log." + k] = v
                    n += 1
                _client.report(exc, handled=True, _extra=details)
    except Exception:  # a log call must never fail because of errq
        pass
    return event_dict
