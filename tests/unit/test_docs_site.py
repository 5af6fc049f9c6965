"""The docs site's generated reference covers the code as it is: every `mlpipe` command and option, every
params.yaml key (the bundled project's and every field of the pydantic model), every refusal class; and
`mkdocs build --strict` passes offline (no page asks for a font, script or style from outside)."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from docs_build import build_docs_site
from pydantic import BaseModel, Field

from mlpipe import errors
from mlpipe.config import Params, flatten

REPO = Path(__file__).resolve().parents[2]


def _load_generator():
    spec = importlib.util.spec_from_file_location("docs_reference", REPO / "scripts" / "docs_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_reference"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


docs_reference = _load_generator()


def _commands() -> dict[str, Any]:
    """{"mlpipe run": click command, ...}: the Typer app walked here, independently of the generator."""
    from typer.main import get_command

    from mlpipe.cli import app

    found = {}
    todo = [("mlpipe", get_command(app))]
    while todo:
        path, cmd = todo.pop()
        found[path] = cmd
        for name in getattr(cmd, "list_commands", lambda _ctx: [])(None):
            todo.append((f"{path} {name}", cmd.get_command(None, name)))
    return found


def _sections(markdown: str) -> dict[str, str]:
    """{"mlpipe run": the text of its section} of the CLI page."""
    parts = re.split(r"^## `([^`]+)`$", markdown, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_cli_reference_has_every_command_and_every_option_of_it():
    sections = _sections(docs_reference.cli_markdown())
    commands = _commands()
    assert set(sections) == set(commands)
    assert {"mlpipe run", "mlpipe serve", "mlpipe data accept"} <= set(sections)
    for path, cmd in commands.items():
        for param in cmd.params:
            names = [param.name.upper()] if param.param_type_name == "argument" else param.opts
            for name in names:
                assert f"`{name}" in sections[path] or f", {name}" in sections[path], (path, name)


def _pattern(key: str) -> re.Pattern:
    """A documented key as a pattern: `<name>` stands for any one key of the user's."""
    return re.compile(re.escape(key).replace(re.escape(docs_reference.MAP_KEY), r"[^.]+") + r"$")


def _documented(key: str, keys: list) -> bool:
    """A params.yaml key is documented by its own row, by a `<name>` row, or under a mapping of values of
    the user's (train.hyperparams.learning_rate under `train.hyperparams`)."""
    for k in keys:
        if _pattern(k.key).match(key):
            return True
        if not k.section and k.type_.startswith("mapping") and key.startswith(k.key + "."):
            return True
    return False


def test_the_params_reference_has_every_key_of_the_bundled_params_yaml():
    keys = docs_reference.params_keys()
    bundled = flatten(yaml.safe_load((REPO / "params.yaml").read_text()))
    missing = [k for k in bundled if not _documented(k, keys)]
    assert missing == []
    assert {"validate.ranges.<name>.min", "gate.max_net_negative_flips", "sweep.grid"} <= {
        k.key for k in keys
    }


def _model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every field of the model tree, by its params.yaml name, walked here from pydantic's own field list."""
    out = set()
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        out.add(key)
        inner, mapped = docs_reference._models_in(field.annotation)
        if inner is not None:
            out |= _model_keys(inner, f"{key}.{docs_reference.MAP_KEY}." if mapped else f"{key}.")
    return out


def test_the_params_reference_has_every_field_of_the_model_once():
    keys = [k.key for k in docs_reference.params_keys()]
    assert len(keys) == len(set(keys))
    assert set(keys) == _model_keys(Params)
    page = docs_reference.params_markdown()
    assert all(f"`{k}`" in page for k in keys)


class _Rule(BaseModel):
    limit: float = Field(default=1.0, ge=0)  # how far a row may go


class _Section(BaseModel):
    """A section's words."""

    # a comment above the field
    rules: dict[str, _Rule] = Field(default_factory=dict)
    name: str


def test_a_new_section_is_documented_with_its_comments_bounds_and_defaults():
    keys = {k.key: k for k in docs_reference.params_keys(_Section, "new.")}
    assert set(keys) == {"new.rules", "new.rules.<name>.limit", "new.name"}
    assert keys["new.rules"].section and "a comment above the field" in keys["new.rules"].help
    limit = keys["new.rules.<name>.limit"]
    assert (limit.default, limit.bounds, limit.help) == ("1.0", ">= 0", "how far a row may go")
    assert keys["new.name"].default == "required"


def test_the_errors_reference_has_every_refusal_and_exit_code():
    page = docs_reference.errors_markdown()
    for name, cls in vars(errors).items():
        if isinstance(cls, type) and issubclass(cls, errors.MlpipeError):
            assert f"| `{name}` |" in page
        if name.startswith("EXIT_"):
            assert f"| {getattr(errors, name)} | `{name}` |" in page


OUTSIDE = re.compile(r"""<(?:script|link|img)[^>]+(?:src|href)=["'](?:https?:)?//""", re.I)


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("docs") / "site"
    build_docs_site(site, dict(os.environ))
    return site


def test_mkdocs_build_strict_passes_and_every_page_is_offline(built_site):
    pages = sorted(built_site.rglob("*.html"))
    for name in ("index.html", "reference/cli.html", "reference/params.html", "architecture.html"):
        assert (built_site / name).exists(), name
    assert len(pages) >= 25
    loads_outside = [(p.name, m) for p in pages for m in OUTSIDE.findall(p.read_text())]
    assert loads_outside == []
    arch = (built_site / "architecture.html").read_text()
    assert "<!-- generated:" not in arch and "mlpipe.pipeline.stages.train" in arch
    modules = [
        ".".join(p.relative_to(REPO / "src").with_suffix("").parts)
        for p in (REPO / "src" / "mlpipe").rglob("*.py")
        if p.name != "__init__.py"
    ]
    assert modules and [m for m in modules if f"<code>{m}</code>" not in arch] == []
    assert (built_site / "search" / "search_index.json").exists()


def test_params_yaml_comments_are_read_beside_their_keys():
    text = (
        "a:                      # a section\n"
        "  b: 1                  # one\n"
        "                        # and more\n"
        "  # a block comment is no key's\n"
        "  c: [x, y]\n"
        'd: "0 3 * * *"          # a value with stars\n'
    )
    assert docs_reference.yaml_comments(text) == {
        "a": "a section",
        "a.b": "one and more",
        "d": "a value with stars",
    }
