"""A conversation's state value: checked before anything is written."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import StateError

__all__ = ["check_state"]


def check_state(value: Any, model: type[BaseModel] | None = None) -> Any:
    """Validate a state value before anything is written; returns it as JSON data.

    The value comes back the way a JSON round trip leaves it (tuples become
    lists, number keys become strings), so every store hands back the same
    thing whether it keeps the value in memory or in a file. NaN and infinity
    are refused: they are not JSON, and other readers of the store would choke.
    """
    if model is not None:
        try:
            value = model.model_validate(value).model_dump(mode="json")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "value"
            raise StateError(
                f"invalid state for {model.__name__}: {where}: {first['msg']}",
                hint="nothing was written",
            ) from None
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StateError(f"state must be JSON data: {exc}", hint="nothing was written") from None
    return json.loads(text)
