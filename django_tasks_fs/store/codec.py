"""Turn task payloads into Firestore-safe values and back, and enforce the size limits.

Firestore rejects arrays nested in arrays and integers beyond int64, so payloads are
stored as JSON text: every JSON value round-trips exactly. Values that are not plain
JSON are refused with the path of the offending value, never coerced silently.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..exceptions import NotJSONSerializable, PayloadTooLarge

#: Firestore's hard limit for one document, in bytes.
MAX_DOCUMENT_BYTES = 1_048_576
#: Nesting deeper than this is refused (the JSON decoder recurses once per level).
MAX_NESTING_DEPTH = 500
#: Integers with more digits are refused: Python will not write them as text (by
#: default nothing past 4,300 digits), so they could not be encoded or read back.
MAX_INT_DIGITS = 4000
_INT_BOUND = 10**MAX_INT_DIGITS


def _check_json(value: Any, where: str) -> None:
    """Raise NotJSONSerializable unless ``value`` is plain JSON (tuples count as lists)."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_NESTING_DEPTH:
            raise NotJSONSerializable(f"{path}: nested deeper than {MAX_NESTING_DEPTH} levels.")
        if item is None or isinstance(item, (bool, str)):
            continue
        if isinstance(item, int):
            if not -_INT_BOUND < item < _INT_BOUND:
                raise NotJSONSerializable(
                    f"{path}: integer with more than {MAX_INT_DIGITS} digits; pass it as a str."
                )
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise NotJSONSerializable(f"{path}: {item!r} is not a JSON number.")
            continue
        if isinstance(item, (list, tuple)):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(item))
            continue
        if isinstance(item, dict):
            for key, v in item.items():
                if not isinstance(key, str):
                    raise NotJSONSerializable(
                        f"{path}: dict key {key!r} is a {type(key).__name__}; JSON keys must be str."
                    )
                stack.append((v, f"{path}[{key!r}]", depth + 1))
            continue
        raise NotJSONSerializable(
            f"{path}: value of type {type(item).__name__} is not JSON-serializable "
            f"(use dict, list, str, int, float, bool or None)."
        )


def encode_json(value: Any, *, where: str) -> str:
    """Return ``value`` as JSON text, or raise NotJSONSerializable naming ``where``."""
    _check_json(value, where)
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates are valid JSON only as escapes; Firestore strings must be UTF-8.
            text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        # Anything the check let through but the encoder refuses (e.g. an integer under
        # MAX_INT_DIGITS when the app lowered sys.set_int_max_str_digits()).
        raise NotJSONSerializable(f"{where}: {exc}") from exc
    return text


def decode_json(text: str) -> Any:
    """Inverse of encode_json."""
    return json.loads(text)


def _value_size(value: Any) -> int:
    """Storage size of one Firestore value, per the documented rules."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (int, float, datetime)):
        return 8
    if isinstance(value, str):
        return len(value.encode("utf-8")) + 1
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(_value_size(v) for v in value)
    if isinstance(value, Mapping):
        return sum(len(str(k).encode("utf-8")) + 1 + _value_size(v) for k, v in value.items())
    # Sentinels such as SERVER_TIMESTAMP end up as timestamps.
    return 8


def document_size(path: str, fields: Mapping[str, Any]) -> int:
    """Storage size of a document at ``path`` ('collection/id') holding ``fields``."""
    name_size = sum(len(part.encode("utf-8")) + 1 for part in path.split("/")) + 16
    return name_size + _value_size(fields) + 32


def ensure_fits(path: str, fields: Mapping[str, Any], *, what: str) -> int:
    """Raise PayloadTooLarge when the document would pass Firestore's limit; return its size."""
    size = document_size(path, fields)
    if size > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(
            f"{what} is too large to store: the execution document would be {size:,} bytes, "
            f"over Firestore's {MAX_DOCUMENT_BYTES:,}-byte limit. Store large data elsewhere "
            f"(e.g. Cloud Storage) and pass a reference."
        )
    return size
