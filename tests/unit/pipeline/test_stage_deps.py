"""dvc.yaml promises that each stage lists exactly the project files its command imports: an edit to
any of them reruns the stage, and an edit to anything else does not. Computed, not trusted."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SOURCE_ROOTS = (ROOT / "src",)  # mlpipe (with mlpipe.flows) lives under src/
PROJECT_PACKAGES = ("mlpipe",)


def module_file(name: str) -> Path | None:
    """The project file that defines module `name` (a package's __init__.py), or None."""
    parts = name.split(".")
    if parts[0] not in PROJECT_PACKAGES:
        return None
    for base in SOURCE_ROOTS:
        for candidate in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
            if candidate.is_file():
                return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every project module an import statement anywhere in `path` names (top level or inside a function:
    a lazy import runs too), with `from pkg import mod` resolved to the submodule when there is one."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if module_file(f"{node.module}.{alias.name}") is not None
            )
    return {m for m in found if module_file(m) is not None}


def import_closure(module: str) -> set[str]:
    """Project files `python -m <module>` can import: the module, what it imports, transitively, and the
    __init__.py of every package on the way (Python runs each parent package first)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += sorted(imported_modules(module_file(name)))
    return {module_file(m).relative_to(ROOT).as_posix() for m in seen}


def stage_module(cmd: str) -> str:
    words = cmd.split()
    assert words[:2] == ["python", "-m"] and len(words) == 3, f"{cmd!r}: a stage is `python -m <module>`"
    return words[2]


def deps_mismatch(stages: dict) -> dict[str, dict[str, list[str]]]:
    """{stage: {"missing": [...], "extra": [...]}} for stages whose listed .py deps differ from the
    closure."""
    out = {}
    for name, stage in stages.items():
        listed = {d for d in stage.get("deps", []) if d.endswith(".py")}
        wanted = import_closure(stage_module(stage["cmd"]))
        if listed != wanted:
            out[name] = {"missing": sorted(wanted - listed), "extra": sorted(listed - wanted)}
    return out


@pytest.fixture(scope="module")
def stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_each_stage_lists_exactly_the_files_its_command_imports(stages):
    assert deps_mismatch(stages) == {}


def test_a_stage_import_missing_from_dvc_yaml_is_caught(stages):
    broken = copy.deepcopy(stages)
    dropped = "src/mlpipe/data/frames.py"
    broken["evaluate"]["deps"].remove(dropped)
    assert deps_mismatch(broken) == {"evaluate": {"missing": [dropped], "extra": []}}


def test_a_file_the_stage_does_not_import_is_caught(stages):
    broken = copy.deepcopy(stages)
    broken["validate"]["deps"].append("src/mlpipe/serving/app.py")
    assert deps_mismatch(broken) == {"validate": {"missing": [], "extra": ["src/mlpipe/serving/app.py"]}}


def test_lazy_imports_inside_functions_count(tmp_path):
    # registry.models imports tracking at the top; reproduce imports loading inside a function
    assert "src/mlpipe/model/loading.py" in import_closure("mlpipe.registry.reproduce")
