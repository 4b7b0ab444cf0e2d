"""Configs are data: YAML presets validated into (nested) dataclasses, with ``key=value`` overrides.

Unknown keys and values of the wrong type are errors that list every offending key, so a typo in a preset
never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from bisep.errors import ConfigError

T = TypeVar("T")


def load_config(schema: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Read a YAML preset (optional), apply ``dotted.key=value`` overrides, validate into ``schema``."""
    data: dict[str, Any] = {}
    if path is not None:
        data = read_yaml(path)
    for override in overrides or []:
        apply_override(data, override)
    return from_dict(schema, data, source=str(path) if path else "config")


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values, got {type(data).__name__}")
    return data


def apply_override(data: dict[str, Any], override: str) -> None:
    """``"train.lr=3e-4"`` sets ``data["train"]["lr"] = 0.0003`` (the value is parsed as YAML)."""
    key, separator, value = override.partition("=")
    if not separator or not key.strip():
        raise ConfigError(f"override '{override}' must look like key=value")
    node = data
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override '{override}': '{part}' is not a section")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        node[parts[-1]] = value


def from_dict(schema: type[T], data: Any, source: str = "config") -> T:
    problems: list[str] = []
    result = _build(schema, data, "", problems)
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    return result


def _build(schema: Any, value: Any, where: str, problems: list[str]) -> Any:
    if dataclasses.is_dataclass(schema):
        if not isinstance(value, dict):
            problems.append(f"{where or 'top level'} must be a mapping, got {type(value).__name__}")
            return None
        fields = {field.name: field for field in dataclasses.fields(schema) if field.init}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            prefix = f"{where}." if where else ""
            problems.append("unknown keys " + ", ".join(prefix + str(key) for key in unknown)
                            + f" (known: {', '.join(fields)})")
        hints = typing.get_type_hints(schema)
        kwargs = {}
        for name, field in fields.items():
            path = f"{where}.{name}" if where else name
            if name in value:
                kwargs[name] = _build(hints[name], value[name], path, problems)
            elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                problems.append(f"missing required key {path}")
        if problems:
            return None
        try:
            return schema(**kwargs)
        except (ValueError, TypeError) as error:
            problems.append(f"{where or 'config'}: {error}")
            return None
    return _check_value(schema, value, where, problems)


def _check_value(kind: Any, value: Any, where: str, problems: list[str]) -> Any:
    origin = typing.get_origin(kind)
    arguments = typing.get_args(kind)
    if kind is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in arguments:
            return None
        for option in arguments:
            if option is type(None):
                continue
            trial: list[str] = []
            result = _build(option, value, where, trial)
            if not trial:
                return result
        problems.append(f"{where} must be {_name(kind)}, got {value!r}")
        return None
    if origin is typing.Literal:
        if value not in arguments:
            problems.append(f"{where} must be one of {', '.join(map(repr, arguments))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            problems.append(f"{where} must be a list, got {value!r}")
            return None
        item_kind = arguments[0] if arguments else Any
        items = [_build(item_kind, item, f"{where}[{index}]", problems) for index, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{where} must be a mapping, got {value!r}")
            return None
        return dict(value)
    if kind is float:
        if isinstance(value, str):  # PyYAML reads "3e-4" (no dot) as a string: YAML 1.1's float needs one
            try:
                value = float(value) if math.isfinite(float(value)) else value
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{where} must be a number, got {value!r}")
            return None
        if not math.isfinite(value):  # YAML's .nan and .inf: a loss weight of NaN trains silently to NaN
            problems.append(f"{where} must be a finite number, got {value!r}")
            return None
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{where} must be an integer, got {value!r}")
            return None
        return value
    if kind is bool:
        if not isinstance(value, bool):
            problems.append(f"{where} must be true or false, got {value!r}")
            return None
        return value
    if kind is str:
        if not isinstance(value, str):
            problems.append(f"{where} must be text, got {value!r}")
            return None
        return value
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, where, problems)
    return value


def _name(kind: Any) -> str:
    return " or ".join(getattr(option, "__name__", str(option)) for option in typing.get_args(kind)
                       if option is not type(None)) or str(kind)
