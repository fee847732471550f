"""A warm worker process of ``run_tasks``: ``python -P -m django_tasks_fs.worker.child FD LEVEL``.

Started by :mod:`.warm_pool` through :func:`.startup.launch` (see :mod:`.startup` for
why a fresh interpreter with an entry point of ours, and what it is given). It sets
Django up, reports that it started, then runs the jobs it receives on the connection
``FD``, one at a time in its main thread, so that a timeout or SIGTERM can interrupt
an attempt. It stops when the connection closes or brings ``None``.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from multiprocessing.connection import Connection

from ..exceptions import StoreUnavailable
from ..logging import process_attributes
from .chunks import CLAIMED, Done, run_chunk, worker_name
from .logs import configure_logging
from .startup import report_started

logger = logging.getLogger(__name__)


def serve(conn: Connection, stop: threading.Event) -> None:
    """Run the jobs received on ``conn`` and send back what became of them."""
    name = worker_name()
    with process_attributes(worker_id=name):
        _serve(conn, stop, name)


def _serve(conn: Connection, stop: threading.Event, name: str) -> None:
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            done = run_chunk(job, name, stop, on_claimed=lambda: conn.send(CLAIMED))
        except StoreUnavailable as exc:  # an outage: the loop reports it once, no traceback
            logger.warning("chunk not run execution_ids=%s error=%s", job.ids, exc)
            done = [Done(execution_id=i, outcome="error", detail=str(exc)) for i in job.ids]
        except Exception as exc:  # anything else the store raised: report it, go on
            logger.exception("chunk crashed execution_ids=%s", job.ids)
            done = [Done(execution_id=i, outcome="error", detail=repr(exc)) for i in job.ids]
        try:
            conn.send(done)
        except (BrokenPipeError, OSError):
            return
        if stop.is_set():
            return


def main(argv: list[str]) -> None:
    fd, level = (int(value) for value in argv)
    # Ctrl-C reaches the whole process group; the parent decides what happens.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    # SIGTERM between attempts: finish the current chunk by handing the rest back.
    # (During an attempt, interruptible() raises TaskCancelledError in the task instead.)
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    import django

    django.setup()
    configure_logging(level)
    report_started()
    serve(Connection(fd), stop)


if __name__ == "__main__":
    main(sys.argv[1:])
