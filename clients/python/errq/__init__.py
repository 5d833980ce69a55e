"""errq: report a Python service's failures to an errq collector (errqd).

    import errq
    errq.init(addr="collector.internal:4770", service="checkout", environment="prod")
    errq.asyncio.install()          # inside the running loop, once per loop

    @errq.monitor
    async def charge(order): ...

docs/python.md is the guide.  The package is pure Python over liberrq (ctypes, standard
library only): reporting copies the event into liberrq's bounded queue and returns; a
background thread of liberrq delivers it.
"""

from ._client import (ErrqError, NOT_FAILURES, close, flush, init, is_initialized,
                      record_outcome, report, stats)
from ._lib import LibraryNotFound
from ._wrap import gather, monitor, retry
# The submodules, so that `import errq` is enough for errq.asyncio.install and the others.
from . import asyncio, logging, structlog  # noqa: E402  (shadow nothing: absolute imports)

__version__ = "0.1.0"

__all__ = [
    "ErrqError", "LibraryNotFound", "NOT_FAILURES", "close", "flush", "gather", "init",
    "is_initialized", "monitor", "record_outcome", "report", "retry", "stats", "asyncio",
    "logging", "structlog", "__version__",
]
