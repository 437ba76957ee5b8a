"""The registries check themselves, and what is special about a method lives in its family's folder."""
import ast
from pathlib import Path

import pytest

from obliviate import ObliviateError
from obliviate.core.registry import Registry
from obliviate.methods import FAMILIES, METHODS
from obliviate.methods.registry import Family, Method, register

ROOT = Path(__file__).resolve().parent.parent / "obliviate"


def test_a_registry_refuses_a_taken_or_malformed_name_and_lists_the_known_ones():
    r = Registry("widget")
    r.register("alpha", 1)
    with pytest.raises(ValueError, match="widget 'alpha' is registered twice"):
        r.register("alpha", 2)
    with pytest.raises(ValueError, match="lower case"):
        r.register("Bad-Name", 3)
    assert r.lookup("alpha") == 1
    with pytest.raises(ObliviateError, match="unknown widget 'beta'; expected one of alpha"):
        r.lookup("beta")
    with pytest.raises(ObliviateError, match="unknown method 'nope'; expected one of .*npo"):
        METHODS.lookup("nope")


def test_a_method_needs_a_registered_family():
    stray = Family("stray", "not registered")
    with pytest.raises(ValueError, match="family 'stray' is not registered"):
        register(Method("stray_method", object, lambda *a: {}, "x", family=stray))
    assert "stray_method" not in METHODS


def test_every_method_is_a_file_in_its_family_folder():
    assert set(FAMILIES) == {"gradient", "editing", "guards", "exact", "bottleneck"}
    for name, m in METHODS.items():
        assert m.name == name and FAMILIES[m.family.name] is m.family
        assert m.run.__module__.startswith(f"obliviate.methods.{m.family.name}."), (name, m.run.__module__)
        assert (ROOT / "methods" / m.family.name / "__init__.py").is_file()


@pytest.mark.parametrize("where", ["cli", "runs", "engine"])
def test_workflows_commands_and_the_planner_name_no_method(where):
    names = set(METHODS)
    found = []
    for f in (ROOT / where).rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                found.append(f"{f.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert found == []
