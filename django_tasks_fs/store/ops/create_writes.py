"""``Write`` protobufs of document creates, built directly as protocol buffers.

The Firestore client builds a create's ``Write`` through proto-plus wrappers, one per
value (``DocumentExtractor``, ``encode_value``): for an execution document, about 35
fields, that is most of the client-side time of a bulk enqueue (measured: about 1 ms
a document, more than the emulator takes to apply it). The documents we create hold
plain values (None, bool, int, float, str, datetime, lists and str-keyed dicts of
those); for those this module builds the same ``Write`` with the raw protobuf classes,
several times faster. Any other value (a sentinel such as SERVER_TIMESTAMP, bytes, a
reference...) makes the document go through the client's own ``pbs_for_create``.
``tests/unit/test_create_writes.py`` checks the bytes are the client's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.cloud._helpers import _datetime_to_pb_timestamp
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.types import common, document, write

_Value = document.Value.pb()
_ArrayValue = document.ArrayValue.pb()
_MapValue = document.MapValue.pb()
_Document = document.Document.pb()
_Write = write.Write.pb()
_Precondition = common.Precondition.pb()
_NULL = 0  # google.protobuf.NullValue.NULL_VALUE


class _NotPlain(Exception):
    """A value this module does not encode: the client's encoder must."""


def _encode(value: Any) -> Any:
    """``value`` as a raw ``Value`` message (as the client's ``encode_value``)."""
    kind = type(value)
    if kind is str:
        return _Value(string_value=value)
    if value is None:
        return _Value(null_value=_NULL)
    if kind is bool:
        return _Value(boolean_value=value)
    if kind is int:
        return _Value(integer_value=value)
    if kind is float:
        return _Value(double_value=value)
    if kind is datetime:
        return _Value(timestamp_value=_datetime_to_pb_timestamp(value))  # type: ignore[no-untyped-call]
    if kind is DatetimeWithNanoseconds:
        return _Value(timestamp_value=value.timestamp_pb())
    if kind is list or kind is tuple:
        return _Value(array_value=_ArrayValue(values=[_encode(v) for v in value]))
    if kind is dict:
        return _Value(map_value=_MapValue(fields=_fields(value)))
    if isinstance(value, str):  # a str subclass, e.g. a StrEnum: the client stores its text
        return _Value(string_value=value)
    raise _NotPlain(kind.__name__)


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    fields = {}
    for key, value in data.items():
        if type(key) is not str:
            raise _NotPlain(type(key).__name__)
        fields[key] = _encode(value)
    return fields


def create_write(document_path: str, data: dict[str, Any]) -> write.Write:
    """The ``Write`` that creates ``data`` at ``document_path`` (a full resource name),
    failing if the document exists: the client's ``pbs_for_create``, faster."""
    try:
        pb = _Write(
            update=_Document(name=document_path, fields=_fields(data)),
            current_document=_Precondition(exists=False),
        )
    except _NotPlain:
        (slow,) = _helpers.pbs_for_create(document_path, data)
        written: write.Write = slow
        return written
    wrapped: write.Write = write.Write.wrap(pb)
    return wrapped
