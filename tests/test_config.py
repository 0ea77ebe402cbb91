"""The schema is the one source of every key: each key reaches a dataclass field, and each field
comes from a key with the same default."""

from __future__ import annotations

import collections.abc
import dataclasses
import typing
from pathlib import Path

import pytest

from lungsynth.config import annotated_yaml, complete, leaves, load_config, section_schema
from lungsynth.errors import InputError
from lungsynth.settings import WorkflowSettings

REPO = Path(__file__).resolve().parents[1]


def dataclass_fields(cls=WorkflowSettings, path=""):
    """``key path -> (class, field, type)`` of every field of the settings tree."""
    out = {}
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        key = f"{path}.{field.name}".lstrip(".")
        out[key] = (cls, field, hints[field.name])
        if dataclasses.is_dataclass(hints[field.name]):
            out.update(dataclass_fields(hints[field.name], key))
    return out


def is_mapping(hint) -> bool:
    return typing.get_origin(hint) in (collections.abc.Mapping, dict) or hint is dict


def test_every_schema_key_reaches_a_dataclass_field():
    fields = dataclass_fields()
    missing = []
    for key, _ in leaves():
        parent = key.rsplit(".", 1)[0]
        if key not in fields and not (parent in fields and is_mapping(fields[parent][2])):
            missing.append(key)
    assert not missing, f"schema keys no settings dataclass receives: {missing}"


def test_every_dataclass_field_has_a_schema_key_with_the_same_default():
    for key, (cls, field, hint) in dataclass_fields().items():
        node = section_schema(key)
        assert "default" in node, f"{key}: no default in the schema"
        if field.default is not dataclasses.MISSING:
            assert field.default == node["default"], f"{key}: default {field.default!r} in {cls.__name__}, " \
                                                     f"{node['default']!r} in the schema"
        assert cls.PATH == key.rpartition(".")[0], f"{cls.__name__}.PATH is {cls.PATH!r}, built at {key}"


def test_every_leaf_has_a_default_and_a_type():
    for key, node in leaves():
        assert "default" in node, key
        assert {"type", "enum", "$ref"} & set(node), key


def test_settings_from_nothing_are_the_schemas_defaults():
    built = WorkflowSettings.from_config({}).to_dict()

    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value

    assert plain(built) == complete({})


@pytest.mark.parametrize("files", [
    ["config/config.yaml"],
    ["config/config.yaml", "config/benchmark.yaml"],
    ["config/config.yaml", "config/lidc.yaml"],
    ["config/config.yaml", "tests/workflow/config.yaml"],
])
def test_shipped_configs_are_valid(files):
    WorkflowSettings.from_config(load_config(*(REPO / f for f in files)))


def test_checks_across_sections_name_the_key():
    with pytest.raises(InputError) as err:
        WorkflowSettings.from_config({"nnunet": {"runs": 2}, "targeted": {"selection_runs": 3}})
    assert err.value.where == "targeted.selection_runs"
    with pytest.raises(InputError) as err:
        WorkflowSettings.from_config({"ddpm": {"training": {"patch_size": [48, 48, 48]}},
                                      "preprocess": {"volume_size": [32, 96, 96]}})
    assert err.value.where == "ddpm.training.patch_size"


def test_annotated_yaml_reads_back_as_the_config():
    import yaml

    config = load_config(REPO / "config" / "config.yaml", REPO / "config" / "benchmark.yaml")
    text = annotated_yaml(config)
    assert "# independent trainings per arm" in text
    assert yaml.safe_load(text) == config
