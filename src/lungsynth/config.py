"""The configuration's one source of truth: ``config.schema.yaml`` (in this package).

The schema holds every key's type, allowed values, default and description. The workflow
validates the merged config against it with Snakemake's ``validate(..., set_default=True)``;
the library's settings are frozen dataclasses, one per config section (same shape, same
names), built by one generic function, :func:`build`, from a completed section. So a key is
validated in one place (the schema), defaulted in one place (the schema) and typed in one
place (its dataclass field); a dataclass ``__post_init__`` keeps only checks that involve more
than one key. ``tests/test_config.py`` walks the schema and fails for a key no dataclass
field receives.

A partial section (the CLI, a benchmark, a test) goes through :func:`complete` first, which
fills the schema's defaults and validates, naming the key of any problem.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Iterator, Mapping, TypeVar

import yaml

from .errors import InputError

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")

T = TypeVar("T")


@functools.cache
def schema() -> dict:
    """The configuration schema (JSON Schema 2020-12, read from YAML)."""
    return yaml.safe_load(SCHEMA_PATH.read_text())


def section_schema(path: str) -> dict:
    """The schema node of a section, e.g. ``ddpm.training`` (``""``: the whole config)."""
    node = schema()
    for part in _parts(path):
        try:
            node = node["properties"][part]
        except KeyError:
            raise KeyError(f"the schema has no section {path!r}") from None
    return node


def _parts(path: str) -> list[str]:
    return [p for p in path.split(".") if p]


def _filling_validator():
    """Draft 2020-12 validator that sets each missing property to (a copy of) its default first.

    The recipe of jsonschema's FAQ, as Snakemake's ``validate(set_default=True)`` uses it; copies,
    so a filled config never shares a list or mapping with the schema.
    """
    from jsonschema import Draft202012Validator, validators

    validate_properties = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, node):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, node)

    return validators.extend(Draft202012Validator, {"properties": set_defaults})


def problems(config: Mapping[str, Any]) -> list[str]:
    """Every schema violation of a config, one line each: ``key.path: message`` (with a hint for a
    number that YAML read as text, e.g. ``1e-4``)."""
    from jsonschema import Draft202012Validator

    lines = []
    for error in sorted(Draft202012Validator(schema()).iter_errors(config), key=lambda e: list(map(str, e.path))):
        lines.append(f"{_key(error.absolute_path) or '(top level)'}: {_message(error)}")
    return lines


def _key(path) -> str:
    return ".".join(str(p) for p in path)


def _message(error) -> str:
    message = error.message
    if error.validator == "type" and isinstance(error.instance, str):
        try:
            float(error.instance)
        except ValueError:
            pass
        else:
            message += f" (YAML reads {error.instance} as text: write the number with a dot, e.g. 1.0e-4)"
    return message


def complete(values: Mapping[str, Any] | None, path: str = "") -> dict:
    """The section at ``path`` with every missing key set to its schema default, validated.

    ``values`` is that section's mapping (partial or whole). InputError names the first bad key
    (e.g. ``ddpm.training.patch_size``) and the problem.
    """
    if values is not None and not isinstance(values, Mapping):
        raise InputError(path or "config", f"expected a mapping, got {values!r}")
    section = _plain(dict(values or {}))
    config: dict = section
    for part in reversed(_parts(path)):
        config = {part: config}
    validator = _filling_validator()(schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), _key(e.absolute_path)))
    if errors:
        error = errors[0]
        raise InputError(_key(error.absolute_path) or path or "config", _message(error))
    for part in _parts(path):
        config = config[part]
    return config


def _plain(value):
    """A deep copy with tuples as lists (what YAML gives and the schema's ``array`` means)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


class Section:
    """Mixin of the settings dataclasses: ``PATH`` names the config section a class is built from."""

    PATH: ClassVar[str] = ""

    @classmethod
    def from_config(cls: type[T], values: Mapping[str, Any] | None = None) -> T:
        """Build from the section's mapping (missing keys take the schema's defaults)."""
        return build(cls, values, cls.PATH)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self: T, **changes) -> T:
        """A copy with some fields changed (None values are ignored, e.g. CLI flags not given)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def build(cls: type[T], values: Mapping[str, Any] | None, path: str) -> T:
    """The dataclass ``cls`` from the config section at ``path``, defaults filled and validated."""
    return _construct(cls, complete(values, path), path)


def _construct(cls, values: Mapping[str, Any], path: str):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    extra = sorted(set(values) - set(names))
    if extra:  # a schema key without a field: a bug of the project, not of the user's config
        raise TypeError(f"{cls.__name__} has no field for {path}.{extra[0]} (see lungsynth.config)")
    return cls(**{name: _convert(hints[name], values[name], f"{path}.{name}".lstrip("."))
                  for name in names if name in values})


def _convert(hint, value, path: str):
    """A validated YAML value as the field's type: tuples for sequences, floats for numbers, nested sections."""
    if dataclasses.is_dataclass(hint):
        return _construct(hint, value, path)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        return _convert(next(a for a in args if a is not type(None)), value, path)
    if origin is tuple:
        items = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        return tuple(_convert(item, v, path) for item, v in zip(items, value))
    if origin is list:
        return [_convert(args[0], v, path) for v in value] if args else list(value)
    if origin in (dict, Mapping, typing.Mapping) or hint in (dict,):
        return dict(value)
    if hint is float:
        return float(value)
    if hint is int:
        return int(value)
    return value


def leaves(node: dict | None = None, path: str = "") -> Iterator[tuple[str, dict]]:
    """``(key path, schema node)`` of every leaf key of the schema (a key that is not a section)."""
    node = schema() if node is None else node
    for name, sub in node.get("properties", {}).items():
        key = f"{path}.{name}".lstrip(".")
        if "properties" in sub:
            yield from leaves(sub, key)
        else:
            yield key, sub


def load_config(*files) -> dict:
    """The config as the workflow sees it: YAML files merged in order (later keys win, sections
    merged key by key, as Snakemake's ``--configfile``), then completed and validated."""
    merged: dict = {}
    for file in files:
        merged = _merge(merged, yaml.safe_load(Path(file).read_text()) or {})
    return complete(merged)


def _merge(base: dict, overlay: Mapping) -> dict:
    out = dict(base)
    for key, value in overlay.items():
        out[key] = _merge(out.get(key) or {}, value) if isinstance(value, Mapping) else value
    return out


def annotated_yaml(config: Mapping[str, Any], node: dict | None = None, indent: int = 0) -> str:
    """The config as YAML, each key with its schema description as a comment (``lungsynth config``)."""
    node = schema() if node is None else node
    lines = []
    pad = "  " * indent
    known = list(node.get("properties", {}))
    for name in sorted(config, key=lambda key: known.index(key) if key in known else len(known)):
        value, sub = config[name], node.get("properties", {}).get(name, {})
        about = " ".join(str(sub.get("description", "")).split())
        if isinstance(value, Mapping) and "properties" in sub:
            lines.append(f"{pad}{name}:" + (f"  # {about}" if about else ""))
            lines.append(annotated_yaml(value, sub, indent + 1))
        else:
            text = yaml.safe_dump({name: value}, default_flow_style=True, width=10_000).strip()
            text = text[1:-1] if text.startswith("{") else text   # {key: value} -> key: value
            lines.append(f"{pad}{text}" + (f"  # {about}" if about else ""))
    return "\n".join(lines)
