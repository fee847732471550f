"""gRPC plumbing shared by the services: errors, handler registration, names, paging."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import grpc

from .faults import FaultInjector

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 100
#: Resource ids accepted by Cloud Tasks, Scheduler and Run (letters, digits, - and _).
RESOURCE_ID = re.compile(r"^[A-Za-z0-9_-]{1,500}$")


class RpcError(Exception):
    """Raised by a handler to end the call with a gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(what: str) -> NoReturn:
    raise RpcError(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {what}.")


def invalid(message: str) -> NoReturn:
    raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, message)


@dataclass(frozen=True, slots=True)
class Method:
    """One unary RPC: its name, handler and message types (proto-plus or protobuf)."""

    name: str
    handle: Callable[[Any], Any]
    request_type: Any
    response_type: Any


def _deserializer(message_type: Any) -> Callable[[bytes], Any]:
    deserialize: Callable[[bytes], Any] = (
        getattr(message_type, "deserialize", None) or message_type.FromString
    )
    return deserialize


def _serializer(message_type: Any) -> Callable[[Any], bytes]:
    serialize = getattr(message_type, "serialize", None)
    if serialize is not None:
        return serialize  # type: ignore[no-any-return]
    return lambda message: message.SerializeToString()


def service_handler(
    service: str, methods: Sequence[Method], faults: FaultInjector
) -> grpc.GenericRpcHandler:
    """A generic handler serving ``methods`` as ``/service/Method``, with fault injection."""
    handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            _guarded(f"{service}/{method.name}", method.handle, faults),
            request_deserializer=_deserializer(method.request_type),
            response_serializer=_serializer(method.response_type),
        )
        for method in methods
    }
    return grpc.method_handlers_generic_handler(service, handlers)


def _guarded(
    full_method: str, handle: Callable[[Any], Any], faults: FaultInjector
) -> Callable[[Any, grpc.ServicerContext], Any]:
    def call(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            fault = faults.take(full_method, after=False)
            if fault is not None:
                raise RpcError(fault.code, fault.message)
            response = handle(request)
            fault = faults.take(full_method, after=True)
            if fault is not None:
                raise RpcError(fault.code, fault.message)
        except RpcError as exc:
            logger.debug("rpc %s -> %s %s", full_method, exc.code.name, exc.message)
            context.abort(exc.code, exc.message)
        except Exception:
            logger.exception("rpc %s crashed", full_method)
            context.abort(grpc.StatusCode.INTERNAL, f"emulator error in {full_method}")
        return response

    return call


def match_name(name: str, pattern: re.Pattern[str], kind: str) -> re.Match[str]:
    """Match a resource name; INVALID_ARGUMENT if it is not one."""
    match = pattern.fullmatch(name)
    if match is None:
        invalid(f"Invalid resource field value in the request: {kind} name {name!r}.")
    return match


def check_id(resource_id: str, kind: str) -> None:
    if not RESOURCE_ID.fullmatch(resource_id):
        invalid(
            f"Invalid {kind} id {resource_id!r}: use 1-500 letters, digits, hyphens or underscores."
        )


def paginate(items: Sequence[Any], page_size: int, page_token: str) -> tuple[list[Any], str]:
    """One page of ``items`` and the token of the next page ("" at the end)."""
    try:
        start = int(page_token) if page_token else 0
    except ValueError:
        invalid(f"Invalid page token {page_token!r}.")
    size = page_size if page_size > 0 else DEFAULT_PAGE_SIZE
    end = start + size
    return list(items[start:end]), str(end) if end < len(items) else ""


def clone(message: Any) -> Any:
    """A deep copy of a proto-plus message."""
    message_type = type(message)
    return message_type.deserialize(message_type.serialize(message))


def utcnow() -> datetime:
    return datetime.now(UTC)
