"""An exception, turned into liberrq's event builder calls.

What an exception becomes (docs/python.md, "What an event holds"):
  error_type   the class's qualified name, with its module unless that is builtins
  message      exc.message when it is a non-empty str (the AppException pattern), else str(exc)
  error_code   exc.code, else exc.error_code (anything but None, as str)
  details      in this order, the first of a key kept: the caller's details, exc.details (a
               mapping: one detail per key; anything else: one "details" detail), errq's own
               (pid, asyncio.*, log.*, retry.*), an exception group's members
               (exceptions.N.type, .message), and the chain: cause.N.type, cause.N.message,
               cause.N.via ("cause" for raise ... from, "context" for an exception raised while
               handling another) and cause.N.at ("function (file:line)" where it was raised)
  frames       the exception's traceback, outermost first, followed by each cause's traceback,
               so the innermost frame is where the root cause was raised; in_app is false for
               the standard library, site-packages, dist-packages, frozen modules and errq
Non-string detail values are rendered as JSON.  Every string is cut here to the collector's
limit in characters (liberrq then cuts to its byte limit at a character boundary), so a
huge message costs no huge encoding.
"""

import builtins
import json
import os
import sys
import sysconfig

# The collector's limits (errq.h), in bytes; cutting to as many characters first bounds the
# work of encoding, and liberrq makes the final byte cut.
MAX_MESSAGE = 8192
MAX_DETAIL_VALUE = 1024
MAX_FRAME_STR = 512
MAX_TYPE = 256
MAX_KEY = 128
MAX_DETAILS = 64
MAX_FRAMES = 64
# Causes recorded per event (each costs up to four details and its frames).
MAX_CHAIN = 5
# Filenames whose in_app verdict is cached; the cache is cleared when it is full.
MAX_INAPP_CACHE = 4096
# Items of a list, tuple, set or dict detail value rendered; the rest are counted in a last
# "... N more" item (the value is cut to 1 KiB anyway: this bounds the work, not the size).
MAX_RENDER_ITEMS = 64

# Exception groups (3.11+; TaskGroup raises them): their members' types and messages are
# recorded as details exceptions.N.type / exceptions.N.message.
_GROUP = getattr(builtins, "BaseExceptionGroup", ())

_ERRQ_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _lib_dirs():
    dirs = set()
    for key in ("stdlib", "platstdlib"):
        for scheme_vars in (None, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
            try:
                p = sysconfig.get_paths(vars=scheme_vars)[key] if scheme_vars else \
                    sysconfig.get_paths()[key]
            except (KeyError, ValueError):
                continue
            dirs.add(os.path.realpath(p) + os.sep)
            dirs.add(os.path.abspath(p) + os.sep)
    return tuple(sorted(dirs))


_STDLIB_DIRS = _lib_dirs()
_inapp_cache = {}

# Set by errq.init(in_app_include=..., in_app_exclude=...): module name prefixes.
in_app_include = ()
in_app_exclude = ()


def _module_match(module, prefixes):
    for p in prefixes:
        if module == p or module.startswith(p + "."):
            return True
    return False


def is_in_app(filename, module):
    """False for the standard library, site-packages/dist-packages, frozen modules and
    errq itself; in_app_include / in_app_exclude (module prefixes) override."""
    key = (filename, module)
    v = _inapp_cache.get(key)
    if v is not None:
        return v
    if module and in_app_include and _module_match(module, in_app_include):
        v = True
    elif module and in_app_exclude and _module_match(module, in_app_exclude):
        v = False
    elif not filename or filename.startswith("<frozen "):
        v = False  # <frozen importlib._bootstrap>
    elif filename.startswith("<"):
        v = True  # <stdin>, <string>: code the user typed or built
    else:
        path = os.path.abspath(filename)
        v = not (
            path.startswith(_STDLIB_DIRS)
            or path.startswith(_ERRQ_DIR)
            or os.sep + "site-packages" + os.sep in path
            or os.sep + "dist-packages" + os.sep in path
            or (module or "").split(".", 1)[0] == "errq"
        )
    if len(_inapp_cache) >= MAX_INAPP_CACHE:
        _inapp_cache.clear()
    _inapp_cache[key] = v
    return v


def type_name(exc):
    cls = type(exc)
    mod = getattr(cls, "__module__", None)
    name = getattr(cls, "__qualname__", None) or cls.__name__
    if not mod or mod == "builtins":
        return name
    return mod + "." + name


def text(s, limit):
    """s as NUL-terminated-safe UTF-8 bytes, cut to limit characters; None stays None."""
    if s is None:
        return None
    if not isinstance(s, str):
        s = str(s)
    if len(s) > limit:
        s = s[:limit]
    if "\x00" in s:
        s = s.replace("\x00", "\ufffd")  # a C string would end there
    return s.encode("utf-8", "replace")  # lone surrogates become '?'


def render(value):
    """A detail value: a str as it is, anything else as JSON (repr when JSON cannot)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, set, frozenset, dict)) and len(value) > MAX_RENDER_ITEMS:
        more = "... %d more" % (len(value) - MAX_RENDER_ITEMS)
        if isinstance(value, dict):
            value = dict(list(value.items())[:MAX_RENDER_ITEMS] + [(more, "")])
        else:
            value = list(value)[:MAX_RENDER_ITEMS] + [more]
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError, RecursionError):
        try:
            return repr(value)
        except Exception:  # a broken __repr__ must not stop the report
            return "<unrepresentable %s>" % type(value).__name__


def message_of(exc):
    m = getattr(exc, "message", None)
    if isinstance(m, str) and m:
        return m
    try:
        return str(exc)
    except Exception:  # a broken __str__ must not stop the report
        return "<unprintable %s>" % type(exc).__name__


def code_of(exc):
    for attr in ("code", "error_code"):
        v = getattr(exc, attr, None)
        if v is not None and not callable(v):
            return v if isinstance(v, str) else render(v)
    return None


# Per code object: what a frame of it sends, encoded once (a service raises from the same
# few hundred places).  Cleared when full; holds code objects, never frames.
MAX_FRAME_CACHE = 4096
_frame_cache = {}


def _code_info(co, f_globals):
    """(function, file, module, in_app, function bytes, file bytes, module bytes) of co."""
    info = _frame_cache.get(co)
    if info is None:
        fn = getattr(co, "co_qualname", None) or co.co_name
        mod = f_globals.get("__name__") if f_globals is not None else None
        if not isinstance(mod, str):
            mod = None
        file = co.co_filename
        info = (fn, file, mod, is_in_app(file, mod), text(fn, MAX_FRAME_STR),
                text(file, MAX_FRAME_STR), text(mod, MAX_FRAME_STR))
        if len(_frame_cache) >= MAX_FRAME_CACHE:
            _frame_cache.clear()
        _frame_cache[co] = info
    return info


def clear_caches():
    _inapp_cache.clear()
    _frame_cache.clear()


def frames_of(exc):
    """[(code info, line)] of exc's traceback, outermost first (see _code_info)."""
    out = []
    tb = exc.__traceback__
    while tb is not None:
        f = tb.tb_frame
        out.append((_code_info(f.f_code, f.f_globals), tb.tb_lineno or 0))
        tb = tb.tb_next
    return out


def chain_of(exc):
    """[(via, exception)] of exc's causes, nearest first, at most MAX_CHAIN, cycles cut."""
    out = []
    seen = {id(exc)}
    cur = exc
    while len(out) < MAX_CHAIN:
        nxt = cur.__cause__
        via = "cause"
        if nxt is None and not cur.__suppress_context__:
            nxt = cur.__context__
            via = "context"
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(nxt))
        out.append((via, nxt))
        cur = nxt
    return out


def build(lib, exc, service=None, task=None, details=None, attempt=None, handled=True,
          fingerprint=None, environment=None, extra=None):
    """A new liberrq event for exc (the caller reports or frees it), or None when out of
    memory.  details (the caller's) come first, then exc.details, then extra (errq's own:
    pid, task name...), then the chain, so that the first 64 kept are the most useful."""
    ev = lib.errq_event_new(text(service, MAX_KEY), text(type_name(exc), MAX_TYPE),
                            text(message_of(exc), MAX_MESSAGE))
    if not ev:
        return None
    try:
        _fill(lib, ev, exc, task, details, attempt, handled, fingerprint, environment, extra)
    except BaseException:
        lib.errq_event_free(ev)  # never given to errq_report: ours to free
        raise
    return ev


def _fill(lib, ev, exc, task, details, attempt, handled, fingerprint, environment, extra):
    code = code_of(exc)
    if code is not None:
        lib.errq_event_set_code(ev, text(code, MAX_KEY))
    if task:
        lib.errq_event_set_task(ev, text(task, MAX_TYPE))
    if environment:
        lib.errq_event_set_environment(ev, text(environment, MAX_KEY))
    if fingerprint:
        lib.errq_event_set_fingerprint(ev, text(fingerprint, MAX_KEY))
    if attempt:
        lib.errq_event_set_attempt(ev, int(attempt) & 0xFFFFFFFF)
    lib.errq_event_set_handled(ev, bool(handled))

    pairs = []
    if details:
        pairs.extend(details.items())
    own = getattr(exc, "details", None)
    if own is not None and not callable(own):
        if hasattr(own, "items"):
            try:
                pairs.extend(own.items())
            except Exception:
                pairs.append(("details", own))
        else:
            pairs.append(("details", own))
    if extra:
        pairs.extend(extra.items())
    group = getattr(exc, "exceptions", None) if isinstance(exc, _GROUP) else None
    if group:
        for n, e in enumerate(group[:MAX_CHAIN]):
            pairs.append(("exceptions.%d.type" % n, type_name(e)))
            pairs.append(("exceptions.%d.message" % n, message_of(e)))
    chain = chain_of(exc)
    chain_frames = []
    for n, (via, c) in enumerate(chain):
        cf = frames_of(c)
        prefix = "cause.%d." % n
        pairs.append((prefix + "type", type_name(c)))
        pairs.append((prefix + "message", message_of(c)))
        pairs.append((prefix + "via", via))
        if cf:
            info, line = cf[-1]
            pairs.append((prefix + "at", "%s (%s:%d)" % (info[0], info[1], line)))
        chain_frames.append(cf)

    n = 0
    seen = set()
    for k, v in pairs:
        if n >= MAX_DETAILS:
            break
        k = k if isinstance(k, str) else render(k)
        if k in seen:  # liberrq keeps the last value of a key; errq keeps the first given
            continue
        seen.add(k)
        lib.errq_event_add_detail(ev, text(k, MAX_KEY), text(render(v), MAX_DETAIL_VALUE))
        n += 1

    frames = frames_of(exc)
    for cf in chain_frames:
        frames.extend(cf)
    add = lib.errq_event_add_frame
    for info, line in frames[-MAX_FRAMES:]:
        add(ev, info[4], info[5], line & 0xFFFFFFFF, info[6], info[3])
