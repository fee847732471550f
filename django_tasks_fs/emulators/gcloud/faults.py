"""Fault injection: make the next N calls of an RPC fail with a chosen gRPC status.

For chaos tests::

    emulator.faults.fail_next("CreateTask", "UNAVAILABLE", times=2)
    emulator.faults.fail_next("google.cloud.run.v2.Jobs/RunJob", "DEADLINE_EXCEEDED", after=True)

A method is named by its short name (any service) or ``service/Method``. With
``after=True`` the call takes effect and only its response is replaced by the error,
like a timeout that hides a success.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import grpc


@dataclass(slots=True, kw_only=True)
class Fault:
    """One armed fault."""

    method: str  #: "CreateTask" or "google.cloud.tasks.v2.CloudTasks/CreateTask"
    code: grpc.StatusCode
    times: int  #: calls left to fail
    after: bool = False  #: run the call, then fail it
    message: str = "injected fault"

    def matches(self, full_method: str) -> bool:
        return self.method in (full_method, full_method.rsplit("/", 1)[-1])


def status_code(code: str | grpc.StatusCode) -> grpc.StatusCode:
    """Turn ``"UNAVAILABLE"`` (or a StatusCode) into a StatusCode; ValueError if unknown."""
    if isinstance(code, grpc.StatusCode):
        return code
    try:
        return grpc.StatusCode[code.upper()]
    except KeyError:
        raise ValueError(f"Unknown gRPC status code {code!r}.") from None


class FaultInjector:
    """Armed faults, consumed by the RPC handlers in order of arming."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def fail_next(
        self,
        method: str,
        code: str | grpc.StatusCode,
        *,
        times: int = 1,
        after: bool = False,
        message: str = "injected fault",
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``code``."""
        if times < 1:
            raise ValueError(f"times must be at least 1, not {times!r}.")
        fault = Fault(
            method=method.lstrip("/"),
            code=status_code(code),
            times=times,
            after=after,
            message=message,
        )
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def take(self, full_method: str, *, after: bool) -> Fault | None:
        """Consume one use of the first fault armed for this call and phase."""
        with self._lock:
            for fault in self._faults:
                if fault.after == after and fault.matches(full_method):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        """A snapshot of the armed faults."""
        with self._lock:
            return [
                Fault(method=f.method, code=f.code, times=f.times, after=f.after, message=f.message)
                for f in self._faults
            ]
