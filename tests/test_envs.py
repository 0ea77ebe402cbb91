"""The conda environments in envs/ pin the same versions as the project's own install
(pyproject.toml's dependencies and requirements.lock), so a cluster run uses what the tests used."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
MAIN_ENV = REPO / "envs" / "lungsynth.yaml"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def requirements(lines) -> dict[str, Requirement]:
    reqs = [Requirement(line) for line in lines]
    return {canonicalize_name(r.name): r for r in reqs}


PYPROJECT = requirements(PROJECT["dependencies"])
LOCK = requirements(line.strip() for line in (REPO / "requirements.lock").read_text().splitlines()
                    if line.strip() and not line.lstrip().startswith("#"))


def pinned_version(req: Requirement) -> str | None:
    specs = list(req.specifier)
    return specs[0].version if len(specs) == 1 and specs[0].operator == "==" else None


def env_packages(path: Path) -> tuple[dict[str, str], dict[str, Requirement]]:
    """(conda packages name -> version spec, pip requirements) of one environment file."""
    env = yaml.safe_load(path.read_text())
    conda, pip = {}, {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip.update(requirements(dep.get("pip", [])))
        else:
            name, _, version = re.match(r"([A-Za-z0-9_.\-]+)\s*((?:[=<>!~]=?)?)\s*(.*)", dep).groups()
            conda[canonicalize_name(name)] = version
    return conda, pip


def test_there_is_a_main_environment():
    assert MAIN_ENV in ENV_FILES


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_python_of_the_environment_satisfies_requires_python(path):
    conda, _ = env_packages(path)
    assert conda.get("python"), f"{path.name}: pin python (e.g. python=3.11)"
    python = conda["python"].rstrip(".*")
    assert re.fullmatch(r"3\.\d+", python), f"{path.name}: python={conda['python']}: pin major.minor"
    assert SpecifierSet(PROJECT["requires-python"]).contains(python + ".0"), path.name


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_every_package_of_the_environment_has_the_version_of_the_lock(path):
    conda, pip = env_packages(path)
    for name, req in pip.items():
        if name in LOCK:
            assert pinned_version(req) == pinned_version(LOCK[name]), f"{path.name}: {req} vs lock {LOCK[name]}"
        else:
            assert name in PYPROJECT and req.specifier == PYPROJECT[name].specifier, \
                f"{path.name}: {req} is neither in requirements.lock nor, as is, in pyproject.toml"
    for name, version in conda.items():
        if name in LOCK:
            assert version.lstrip("=") == pinned_version(LOCK[name]), f"{path.name}: conda {name}={version}"
    assert not set(conda) & set(pip) - {"pip"}, f"{path.name}: a package from both conda and pip"


def test_main_environment_holds_the_whole_install():
    """Every direct dependency with pyproject's own specifier, and every package of the lock."""
    _, pip = env_packages(MAIN_ENV)
    for name, req in PYPROJECT.items():
        assert name in pip, f"{req} (pyproject.toml) is missing from {MAIN_ENV.name}"
        assert pip[name].specifier == req.specifier or pinned_version(pip[name]) in req.specifier, \
            f"{MAIN_ENV.name}: {pip[name]} does not satisfy pyproject's {req}"
    assert set(LOCK) <= set(pip), f"missing from {MAIN_ENV.name}: {sorted(set(LOCK) - set(pip))}"
