"""Profile YAML: parsing with line tracking, and errors that point at lines.

The loader (:mod:`bridge.turn.profile`) reads a profile in stages; this module holds
the YAML stage and the error formatting the stages share:

- :func:`parse_yaml` composes the node tree with ``yaml.SafeLoader``, records
  the line of each key and value (:class:`Lines`), reports duplicate keys,
  which PyYAML would otherwise let the last one win without a word, keeps the
  author's own spelling of numbers and dates in text fields, and turns
  ``yaml.YAMLError`` into a :class:`~bridge.turn.errors.ProfileError` at
  ``FILE:LINE:COL``;
- :func:`pydantic_problem` points one pydantic validation error at the line
  recorded for its field;
- :func:`invalid_profile` builds the error listing every problem as
  ``FILE:LINE: ...``, :func:`show_value` renders a value for a message and
  :func:`did_you_mean` suggests the real name for a misspelt one.

The server's config (:mod:`bridge.server.config`) is YAML written by hand too
and is read with the same helpers: it asks :func:`parse_yaml` for one more
level of lines (``users[0].token_env``) and takes an empty file as "all
defaults".
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import ProfileError

#: Shown with every invalid-profile error.
SCHEMA_HINT = "check the fields with `agentproc schema`"

_YAML_TAG = "tag:yaml.org,2002:"
#: Scalars whose author-written text is kept for text fields (env values, args):
#: YAML would turn ``1.10`` into ``1.1`` and ``2024-01-01`` into a date.
_TEXT_LIKE_TAGS = frozenset(_YAML_TAG + t for t in ("int", "float", "timestamp"))
_NULL_TAG = _YAML_TAG + "null"

Loc = tuple[str | int, ...]


@dataclass
class Lines:
    """Where things are in the YAML file (1-based lines), by key path."""

    top: int = 1
    keys: dict[Loc, int] = field(default_factory=dict)
    values: dict[Loc, int] = field(default_factory=dict)
    raw_text: dict[Loc, str] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(default_factory=list)
    #: Put in front of field names in messages (``agentproc.`` inside a reference file).
    prefix: str = ""
    #: Top-level fields that keep no prefix (metadata moved in from outside the block).
    unprefixed: set[str] = field(default_factory=set)
    #: The lines of the nested block (the ``agentproc:`` block of a reference-format file).
    nested: Lines | None = None

    def label(self, loc: Loc) -> str:
        if self.prefix and loc and loc[0] not in self.unprefixed:
            return self.prefix + _label(loc)
        return _label(loc)


def invalid_profile(label: str, problems: list[tuple[int, str]]) -> ProfileError:
    """The error for the profile ``label``, listing ``problems`` (``(line, text)``) by line."""
    problems = sorted(problems, key=lambda p: p[0])
    count = len(problems)
    return ProfileError(
        f"invalid profile {label}: {count} problem{'s' if count != 1 else ''}",
        problems=tuple(f"{label}:{line}: {text}" for line, text in problems),
        path=label,
        hint=SCHEMA_HINT,
    )


def parse_yaml(
    text: str,
    label: str,
    nested_key: str | None,
    *,
    depth: int = 2,
    empty_ok: bool = False,
    example: str = "command: ./agent",
) -> tuple[dict[Any, Any], Lines]:
    """Compose and construct the YAML document; return the data and its lines.

    A top-level ``nested_key`` whose value is a mapping is walked as a block of
    its own (its lines go to :attr:`Lines.nested`, its field names get the
    prefix ``nested_key.``). ``depth`` is how many levels of keys and items get
    their lines recorded (a profile has two: ``env.NAME``). An empty document
    is an error unless ``empty_ok`` (then it is ``{}``); ``example`` is the
    field shown when the top level is not a mapping.
    """
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG):
                if empty_ok:
                    return {}, Lines()
                raise invalid_profile(
                    label, [(1, "the profile is empty; it needs at least `command: ./agent`")]
                )
            if not isinstance(node, yaml.MappingNode):
                kind = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
                raise invalid_profile(
                    label,
                    [
                        (
                            node.start_mark.line + 1,
                            f"the top level must be a mapping of fields "
                            f"(like `{example}`), not {kind}",
                        )
                    ],
                )
            lines = _walk(node, nested_key, depth=depth)
            # Construct after walking: constructing a mapping with merge keys
            # (<<) rewrites the node tree in place.
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, label) from exc
    except RecursionError as exc:
        raise invalid_profile(label, [(1, "invalid YAML: nested too deeply")]) from exc
    assert isinstance(data, dict)
    for loc, raw in lines.raw_text.items():
        _replace_at(data, loc, raw)
    block = data.get(nested_key) if nested_key is not None else None
    if lines.nested is not None and isinstance(block, dict):
        for loc, raw in lines.nested.raw_text.items():
            _replace_at(block, loc, raw)
    return data, lines


def _yaml_error(exc: yaml.YAMLError, text: str, label: str) -> ProfileError:
    """``FILE:LINE:COL: invalid YAML: <problem>``, with a hint for the usual causes."""
    line = column = 0
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "unreadable"
        if exc.problem and exc.context and not exc.context.startswith("while "):
            # "expected a single document in the stream, but found another document"
            problem = f"{exc.context}, {exc.problem}"
        if mark is not None:
            line, column = mark.line, mark.column
    elif isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line = before.count("\n")
        column = len(before) - (before.rfind("\n") + 1)
        problem = f"character U+{exc.character:04X} is not allowed ({exc.reason})"
    else:
        problem = str(exc)
    source_lines = text.splitlines()
    bad_line = source_lines[line] if line < len(source_lines) else ""
    if "{{" in bad_line:
        hint = 'quote text with placeholders, like "{{MESSAGE}}": YAML reads { as a mapping'
    else:
        hint = (
            "fix the YAML at that line and column; quote text that contains ': ' or "
            "starts with a symbol like { [ * & ! | > ' \" % @ `"
        )
    return ProfileError(
        f"invalid profile {label}: 1 problem",
        problems=(f"{label}:{line + 1}:{column + 1}: invalid YAML: {problem}",),
        path=label,
        hint=hint,
    )


def _walk(
    top: yaml.MappingNode,
    nested_key: str | None,
    prefix: str = "",
    top_line: int | None = None,
    *,
    depth: int = 2,
) -> Lines:
    """Record lines of top-level fields and of their items, ``depth`` levels deep.

    A profile needs two levels (``env`` items, ``args`` items), the server's
    config three (``users[0].name``). Few levels, and each node below the
    second walked once however many aliases point at it, keep a document built
    from nested aliases (the "billion laughs") from making this walk
    exponential. The ``nested_key`` block (``agentproc:`` in a reference-format
    file) is walked the same way, on its own.
    """
    lines = Lines(top=top_line or top.start_mark.line + 1, prefix=prefix)
    seen: set[int] = set()
    for key_node, value_node in _mapping_items(top, (), lines):
        loc: Loc = (key_node.value,)
        if (
            not prefix
            and nested_key is not None
            and loc == (nested_key,)
            and isinstance(value_node, yaml.MappingNode)
        ):
            lines.nested = _walk(value_node, None, nested_key + ".", key_node.start_mark.line + 1)
            lines.problems.extend(lines.nested.problems)
            continue
        _walk_items(value_node, loc, lines, depth - 1, seen)
    return lines


def _walk_items(node: yaml.Node, loc: Loc, lines: Lines, levels: int, seen: set[int]) -> None:
    """Record the lines of the items of ``node`` (found at ``loc``), ``levels`` deep."""
    if levels <= 0:
        return
    if len(loc) >= 2:
        # Below the second level an aliased node is walked once: its lines are
        # the anchor's anyway, and walking every alias is what explodes.
        if id(node) in seen:
            return
        seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for sub_key, sub_value in _mapping_items(node, loc, lines):
            if loc == ("env",) and _text_like(sub_value):
                lines.raw_text[(*loc, sub_key.value)] = sub_value.value
            _walk_items(sub_value, (*loc, sub_key.value), lines, levels - 1, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.values[(*loc, index)] = item.start_mark.line + 1
            if loc == ("args",) and _text_like(item):
                lines.raw_text[(*loc, index)] = item.value
            _walk_items(item, (*loc, index), lines, levels - 1, seen)


def _mapping_items(
    node: yaml.MappingNode, loc: Loc, lines: Lines
) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
    """The scalar-keyed items of a mapping, recording key/value lines and
    reporting duplicate keys (PyYAML silently keeps the last one)."""
    seen: dict[str, int] = {}
    items: list[tuple[yaml.ScalarNode, yaml.Node]] = []
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _YAML_TAG + "merge":
            continue
        key = key_node.value
        line = key_node.start_mark.line + 1
        if key in seen:
            lines.problems.append(
                (
                    line,
                    f"field '{lines.label((*loc, key))}': duplicate key; it is also set on line "
                    f"{seen[key]} (lines {seen[key]} and {line})",
                )
            )
        else:
            seen[key] = line
        lines.keys[(*loc, key)] = line
        lines.values[(*loc, key)] = value_node.start_mark.line + 1
        items.append((key_node, value_node))
    return items


def _text_like(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag in _TEXT_LIKE_TAGS


def _replace_at(data: dict[Any, Any], loc: Loc, raw: str) -> None:
    """Put the author's own spelling of a number or date back into a text field."""
    container: object = data.get(loc[0])
    key = loc[1]
    if isinstance(container, dict):
        if key in container:
            container[key] = raw
    elif isinstance(container, list) and isinstance(key, int) and key < len(container):
        container[key] = raw


def _label(loc: Loc) -> str:
    out = str(loc[0]) if loc else ""
    for part in loc[1:]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def show_value(value: object) -> str | None:
    """A short YAML-like rendering of a scalar input, or None for containers."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return None


def pydantic_problem(
    err: Any,
    lines: Lines,
    field_names: Iterable[str],
    nested: Mapping[str, Iterable[str]] | None = None,
) -> tuple[int, str]:
    """Turn one pydantic error into ``(line, "field 'x': what is wrong")``.

    ``field_names`` are the model's fields, to suggest one for a misspelt key.
    """
    raw_loc: Loc = tuple(err["loc"])
    is_key = bool(raw_loc) and raw_loc[-1] == "[key]"
    loc: Loc = raw_loc[:-1] if is_key else raw_loc
    kind = err["type"]
    msg: str = err["msg"]

    if kind == "missing":
        line = lines.top
    elif kind == "extra_forbidden" or is_key:
        line = lines.keys.get(loc, lines.top)
    else:
        line = lines.top
        for end in range(len(loc), 0, -1):
            if loc[:end] in lines.values:
                line = lines.values[loc[:end]]
                break

    if not loc:
        return line, msg
    where = f"field '{lines.label(loc)}'"
    if kind == "missing":
        return line, f"{where}: is required but missing"
    if kind == "extra_forbidden":
        return line, f"{where}: {_unknown_field(loc, field_names, nested)}"
    if kind == "invalid_key":
        return line, f"{where}: field names must be text"
    if kind == "value_error":
        return line, f"{where}: {msg.removeprefix('Value error, ')}"
    text = re.sub(r"^Input should be", "must be", msg)
    shown = show_value(err.get("input"))
    if shown is not None:
        text += f" (got {shown})"
    return line, f"{where}: {text}"


def _unknown_field(
    loc: Loc, field_names: Iterable[str], nested: Mapping[str, Iterable[str]] | None = None
) -> str:
    """ "not a profile field", with the closest real name. ``nested`` names the
    fields of the items of a list-of-mappings field (``requires[0].program``)."""
    names: Iterable[str] | None = None
    if len(loc) == 1:
        text, names = "not a profile field", field_names
    elif len(loc) == 3 and isinstance(loc[0], str) and nested and loc[0] in nested:
        text, names = f"not a field of a `{loc[0]}` entry", nested[loc[0]]
    else:
        text = "not a profile field"
    if names is not None:
        text += did_you_mean(loc[-1], names)
    return text


def did_you_mean(key: object, names: Iterable[str]) -> str:
    """``"; did you mean 'NAME'?"`` for the name in ``names`` closest to a
    misspelt ``key``, or "" when none is close."""
    if not isinstance(key, str):
        return ""
    close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
