"""One configuration form (STYLE.md rule 4): frozen dataclasses, one per concern, loaded from YAML.

Each concern's dataclass lives in its own module of this package and validates itself in
``__post_init__``, raising ``ValueError`` that names the field and the fix. This module holds the
generic loader: ``from_mapping`` turns a YAML mapping into a (nested) dataclass, rejecting unknown
keys with the list of valid ones.

One error convention, whatever path a value came by (YAML, ``--set``, a ``K15Config`` builder, a Tune
``param_space``, a dataclass built in Python): ``<section>.<field> must ... ; <fix>``, e.g.
``learner.lr must be > 0, got -1.0; try 1e-4``. Each section dataclass is decorated with
``@section("learner")``, which prefixes the messages of its ``__post_init__`` checks (written as
``"lr: must be > 0 ..."`` or ``"lr must be > 0 ..."``) with the section name.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
"""Parameter dtypes a model may be loaded in (rollout actors, SFT, Serve)."""
LEARNER_DTYPES: tuple[str, ...] = ("float32", "bfloat16")
"""Parameter dtypes the learner trains in (float16 needs loss scaling, which K15 does not do)."""

_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w\[\]]*(?:\.[A-Za-z_][\w\[\]]*)*)(:)?\s")


def prefixed(name: str, message: str, fields: frozenset[str] | None = None) -> str:
    """``message`` with the section ``name`` in front: ``"tau: must be > 0"`` -> ``"md.tau must be > 0"``.

    The first word counts as a field when it is one of ``fields`` (any word when ``fields`` is
    None); other messages read ``"name: message"``. A message that already starts with ``name.``
    is returned as it is."""
    if not name or message.startswith(f"{name}.") or message.startswith(f"{name} "):
        return message
    match = _FIELD_PREFIX.match(message)
    if match and (fields is None or re.split(r"[.\[]", match.group(1))[0] in fields):
        return f"{name}.{match.group(1)} {message[match.end():]}"
    return f"{name}: {message}"


def section(name: str) -> Any:
    """Class decorator of a settings dataclass: its ``__post_init__`` errors read ``name.field ...``."""

    def wrap(cls: type[T]) -> type[T]:
        post = getattr(cls, "__post_init__", None)
        if post is None:
            return cls
        fields = frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

        @functools.wraps(post)
        def __post_init__(self: Any) -> None:
            try:
                post(self)
            except ValueError as err:
                raise ValueError(prefixed(name, str(err), fields)) from None

        cls.__post_init__ = __post_init__  # type: ignore[attr-defined]
        cls.SECTION = name  # type: ignore[attr-defined]
        return cls

    return wrap


def check_dtype(value: str, allowed: tuple[str, ...] = DTYPES) -> None:
    """Raise ``dtype must be one of [...]`` unless ``value`` is an allowed dtype name."""
    if value not in allowed:
        raise ValueError(f"dtype must be one of {list(allowed)}, got {value!r}")


def field_doc(cls: type, name: str) -> str:
    """The one-line docstring of a dataclass field (``metadata={"doc": ...}``), for CLI help."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return str(f.metadata.get("doc", ""))
    raise KeyError(name)


def doc(text: str, default: Any = dataclasses.MISSING, **kwargs: Any) -> Any:
    """A dataclass field carrying its one-line docstring: ``tau: float = doc("...", 0.1)``."""
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata={"doc": text}, **kwargs)
    return dataclasses.field(default=default, metadata={"doc": text}, **kwargs)


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Convert a YAML value to the annotated type ``tp`` where that needs more than a copy."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(non_none[0], value, where)
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} must be a mapping of {tp.__name__} fields, got {value!r}")
        return from_mapping(tp, value, where)
    if origin is tuple and isinstance(value, (list, tuple)):
        inner = args[0] if args else Any
        return tuple(_convert(inner, v, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        if tp is float and isinstance(value, str):
            try:
                return float(value)  # YAML reads 1e-4 as a string
            except ValueError:
                pass
        raise ValueError(f"{where} must be a {tp.__name__}, got {value!r} ({type(value).__name__})")
    return value


def from_mapping(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys raise ``ValueError`` listing valid keys."""
    assert dataclasses.is_dataclass(cls)
    prefix = f"{where}." if where else ""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where or cls.__name__} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"{prefix}{unknown[0]}: unknown key for {cls.__name__}; valid keys are {sorted(names)}"
        )
    kwargs = {k: _convert(hints[k], v, f"{prefix}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field is missing
        raise ValueError(f"{where or cls.__name__}: {err}") from err
    except ValueError as err:  # the section's own check: name it by where the value came from
        own = getattr(cls, "SECTION", "")
        msg = str(err)
        if own and where and msg.startswith(f"{own}.") and where != own:
            msg = f"{where}.{msg[len(own) + 1:]}"
        raise ValueError(prefixed(where, msg)) from None


def to_mapping(obj: Any) -> Any:
    """The inverse of ``from_mapping``: plain dicts/lists ready for YAML or Ray Tune."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_mapping(v) for k, v in obj.items()}
    return obj


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping, with errors that name the file."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"config file {p} does not exist; pass the path of a YAML file")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{p}: not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{p}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def load_config(cls: type[T], path: str | Path, overrides: Mapping[str, Any] | None = None) -> T:
    """Load dataclass ``cls`` from a YAML file, optionally with dotted-key overrides."""
    data = load_yaml(path)
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return from_mapping(cls, data, "")
