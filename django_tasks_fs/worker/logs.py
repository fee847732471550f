"""Console logging of ``run_tasks``, its worker processes and ``execute_task``.

When the project configured no handler on the root logger, these commands print
records on stderr through one root handler. Django's default LOGGING already prints
the ``django`` loggers (``django.tasks``: "Task ... state=FAILED") on the console when
``DEBUG=True``, and those records propagate to the root logger too: a plain root
handler (``logging.basicConfig``) printed each of them a second time. Our handler
skips a record only when a console handler below the root has printed it, so each
record prints once with ``DEBUG`` on or off, and none is dropped.

Every record gets the structured attributes of :mod:`django_tasks_fs.logging`
(execution id, task path, ...); with ``DJANGO_TASKS_FS_LOG_FORMAT=json`` in the
environment (inherited by the worker's processes) the handler prints them as Cloud
Logging JSON instead of text.
"""

from __future__ import annotations

import logging
import os
import sys

from ..logging import FORMAT_ENV, CloudLoggingFormatter, TaskAttributes

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _is_console(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return (
        isinstance(handler, logging.StreamHandler)
        and not isinstance(handler, logging.FileHandler)
        and stream is not None
        and stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    )


class PrintedOnce(logging.Filter):
    """Refuse records that a console handler of a logger below the root printed already."""

    def filter(self, record: logging.LogRecord) -> bool:
        logger = logging.Logger.manager.loggerDict.get(record.name)
        while isinstance(logger, logging.Logger) and logger.parent is not None:
            for handler in logger.handlers:
                printed = _is_console(handler) and record.levelno >= handler.level
                if printed and handler.filter(record):
                    return False
            if not logger.propagate:
                break
            logger = logger.parent
        return True


def configure_logging(level: int, fmt: str = FORMAT) -> None:
    """Print records on stderr unless the project's LOGGING already sends them somewhere."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        json_lines = os.environ.get(FORMAT_ENV, "").lower() == "json"
        handler.setFormatter(CloudLoggingFormatter() if json_lines else logging.Formatter(fmt))
        handler.addFilter(PrintedOnce())
        handler.addFilter(TaskAttributes())
        root.addHandler(handler)
        root.setLevel(level)
    logging.getLogger("django_tasks_fs").setLevel(level)
