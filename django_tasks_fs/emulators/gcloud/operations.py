"""Long-running operations (``google.longrunning.Operations``), as Cloud Run returns them.

``operation.result()`` in the official clients polls GetOperation on the same channel;
the Cloud Run service marks an operation done (with a response or an error) here.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.protobuf import any_pb2, empty_pb2
from google.rpc import status_pb2

from .faults import FaultInjector
from .rpc import Method, not_found, paginate, service_handler

SERVICE = "google.longrunning.Operations"
MAX_WAIT = 60.0  #: seconds WaitOperation blocks at most


def pack(message: Any) -> any_pb2.Any:
    """A proto-plus (or protobuf) message in an Any."""
    packed = any_pb2.Any()
    packed.Pack(type(message).pb(message) if hasattr(type(message), "pb") else message)
    return packed


class OperationBook:
    """Operations by name; their metadata and result are set by the services."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self._operations: dict[str, operations_pb2.Operation] = {}

    def create(self, location: str, metadata: Any, *, response: Any = None) -> Any:
        """A new operation in ``location`` (``projects/P/locations/L``), done if given a response."""
        operation = operations_pb2.Operation(
            name=f"{location}/operations/{uuid.uuid4()}", metadata=pack(metadata)
        )
        if response is not None:
            operation.done = True
            operation.response.CopyFrom(pack(response))
        with self.cond:
            self._operations[operation.name] = operation
            return _copy(operation)

    def update(
        self,
        name: str,
        *,
        metadata: Any = None,
        response: Any = None,
        error: tuple[grpc.StatusCode, str] | None = None,
    ) -> None:
        """Refresh the metadata; a response or an error also marks it done."""
        with self.cond:
            operation = self._operations.get(name)
            if operation is None:
                return
            if metadata is not None:
                operation.metadata.CopyFrom(pack(metadata))
            if response is not None:
                operation.done = True
                operation.response.CopyFrom(pack(response))
            elif error is not None:
                operation.done = True
                operation.error.CopyFrom(
                    status_pb2.Status(code=error[0].value[0], message=error[1])
                )
            self.cond.notify_all()

    def handler(self, faults: FaultInjector) -> grpc.GenericRpcHandler:
        o = operations_pb2
        return service_handler(
            SERVICE,
            [
                Method("GetOperation", self.get_operation, o.GetOperationRequest, o.Operation),
                Method(
                    "ListOperations",
                    self.list_operations,
                    o.ListOperationsRequest,
                    o.ListOperationsResponse,
                ),
                Method(
                    "DeleteOperation",
                    self.delete_operation,
                    o.DeleteOperationRequest,
                    empty_pb2.Empty,
                ),
                Method("WaitOperation", self.wait_operation, o.WaitOperationRequest, o.Operation),
            ],
            faults,
        )

    def get_operation(self, request: Any) -> Any:
        with self.cond:
            return _copy(self._get(request.name))

    def list_operations(self, request: Any) -> Any:
        prefix = request.name.rstrip("/") + "/"
        with self.cond:
            found = [_copy(o) for n, o in sorted(self._operations.items()) if n.startswith(prefix)]
        page, token = paginate(found, request.page_size, request.page_token)
        return operations_pb2.ListOperationsResponse(operations=page, next_page_token=token)

    def delete_operation(self, request: Any) -> Any:
        with self.cond:
            self._get(request.name)
            del self._operations[request.name]
        return empty_pb2.Empty()

    def wait_operation(self, request: Any) -> Any:
        timeout = (
            request.timeout.ToTimedelta().total_seconds() if request.HasField("timeout") else 0
        )
        with self.cond:
            self.cond.wait_for(
                lambda: self._get(request.name).done, timeout=min(timeout or MAX_WAIT, MAX_WAIT)
            )
            return _copy(self._get(request.name))

    def _get(self, name: str) -> operations_pb2.Operation:
        operation = self._operations.get(name)
        if operation is None:
            not_found(f"operation {name}")
        return operation


def _copy(operation: operations_pb2.Operation) -> operations_pb2.Operation:
    copy = operations_pb2.Operation()
    copy.CopyFrom(operation)
    return copy
