"""errq.logging.ErrqHandler: a logging.Handler that reports the exceptions a service logs.

    import logging, errq.logging
    logging.getLogger().addHandler(errq.logging.ErrqHandler())

A record at ERROR or above (and at the handler's level, default ERROR) that carries exc_info (logger.exception(...), logger.error(..., exc_info=True)) is
reported as its exception, handled=True (the service caught it to log it), with the
logger's name and the formatted log message as the details log.logger and log.message.
Records without an exception are not events.  An exception already reported by another
errq path is not reported again.  emit() never blocks on the network and never raises.
"""

import logging as _logging

from . import _client


class ErrqHandler(_logging.Handler):
    def __init__(self, level=_logging.ERROR, task=None):
        super().__init__(level)
        self.task = task

    def emit(self, record):
        try:
            ei = record.exc_info
            if record.levelno < _logging.ERROR or not ei or ei is True:
                return
            exc = ei[1] if isinstance(ei, tuple) else ei
            if not _client.is_failure(exc):
                return
            details = {"log.logger": record.name, "log.message": record.getMessage()}
            _client.report(exc, task=self.task, handled=True, _extra=details)
        except Exception:
            self.handleError(record)
