"""The docs site's CLI and params reference, generated from the code at every build, so the pages cannot
drift from what `mlpipe` accepts: the commands and options from the Typer app (its click tree), the
params.yaml keys from the pydantic model in `mlpipe.config` (types, defaults, bounds, and the comments and
docstrings written beside the fields).

Used two ways: as a MkDocs hook (`hooks:` in mkdocs.yml; `on_files` adds the two pages to the build) and
as a script (`python scripts/docs_reference.py cli|params` prints a page)."""

from __future__ import annotations

import ast
import enum
import inspect
import io
import re
import sys
import textwrap
import tokenize
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLI_PAGE = "reference/cli.md"
PARAMS_PAGE = "reference/params.md"
ERRORS_PAGE = "reference/errors.md"
LAYERS_MARK = "<!-- generated: layers -->"
STAGES_MARK = "<!-- generated: stages -->"
MODULES_MARK = "<!-- generated: modules -->"
# front matter of a page that is one wide table: the theme's table of contents would only narrow it
NO_TOC = ("---", "hide:", "  - toc", "---", "")
# a placeholder for the keys of a mapping whose keys are the user's (a column, a metric, a hyperparameter)
MAP_KEY = "<name>"


# ---- the CLI -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionDoc:
    names: str  # "--port", "--trigger / --no-trigger", "REF" for an argument
    kind: str  # "option" or "argument"
    type_: str
    default: str
    help: str


@dataclass(frozen=True)
class CommandDoc:
    path: str  # "mlpipe run", "mlpipe data accept"
    help: str
    options: tuple[OptionDoc, ...]


def _param_type(param: Any) -> str:
    """The value a parameter takes: its choices, `flag`, or its Python type (Typer's own descriptor, or
    click's type name where a parameter has no descriptor)."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if annotation is None:
        choices = getattr(getattr(param, "type", None), "choices", None)
        return " | ".join(map(str, choices)) if choices else str(getattr(param.type, "name", "")).lower()
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return " | ".join(str(m.value) for m in annotation)
    if getattr(param, "is_flag", False) or annotation is bool:
        return "flag"
    return _type_name(annotation)


def _param_doc(param: Any) -> OptionDoc:
    kind = param.param_type_name
    if kind == "argument":
        names = param.name.upper()
    else:
        names = " / ".join(x for x in (", ".join(param.opts), ", ".join(param.secondary_opts)) if x)
    default = param.default
    if param.required:
        shown = "required"
    elif default is None or callable(default) or default == () or "Sentinel" in type(default).__name__:
        shown = ""
    else:
        shown = str(default.value if isinstance(default, enum.Enum) else default)
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    bounds = (
        f" ({low if low is not None else ''}..{high if high is not None else ''})"
        if (low, high)
        != (
            None,
            None,
        )
        else ""
    )
    help_ = " ".join((getattr(param, "help", None) or "").split())
    return OptionDoc(names, kind, _param_type(param) + bounds, shown, help_)


def cli_commands() -> list[CommandDoc]:
    """Every command of `mlpipe`, groups walked, in the order `mlpipe --help` lists them."""
    from typer.main import get_command

    from mlpipe.cli import app

    out: list[CommandDoc] = []

    def walk(command: Any, path: str) -> None:
        options = tuple(_param_doc(p) for p in command.params if p.name != "help")
        out.append(CommandDoc(path, inspect.cleandoc(command.help or ""), options))
        for name in getattr(command, "list_commands", lambda _ctx: [])(None):
            walk(command.get_command(None, name), f"{path} {name}")

    walk(get_command(app), "mlpipe")
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def cli_markdown(commands: list[CommandDoc] | None = None) -> str:
    commands = cli_commands() if commands is None else commands
    lines = [
        "# CLI reference",
        "",
        "Generated from the `mlpipe` Typer app at every docs build (`scripts/docs_reference.py`): every",
        "command, argument and option as `mlpipe COMMAND --help` shows it. Exit codes are on",
        "[Concepts: exit codes](../concepts/exit-codes.md).",
        "",
    ]
    for cmd in commands:
        lines += [f"## `{cmd.path}`", "", cmd.help or "(no help text)", ""]
        if cmd.options:
            lines += ["| option | type | default | what |", "|---|---|---|---|"]
            lines += [
                f"| `{_cell(o.names)}` | {_cell(o.type_)} | {_cell(o.default)} | {_cell(o.help)} |"
                for o in cmd.options
            ]
            lines.append("")
    return "\n".join(lines) + "\n"


# ---- params.yaml ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyDoc:
    key: str  # dotted path in params.yaml, "validate.ranges.<name>.min"
    type_: str
    default: str
    bounds: str
    help: str
    section: bool  # a mapping documented key by key below it


def _field_comments(cls: type) -> dict[str, str]:
    """{field: the comment written beside it (trailing, on its lines) or just above it} from the class's
    source: where mlpipe.config explains its keys."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    lines = source.splitlines()
    out: dict[str, str] = {}
    for node in ast.parse(source).body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []
        n = node.lineno - 1
        while n >= 1 and lines[n - 1].strip().startswith("#"):
            above.insert(0, comments.get(n, ""))
            n -= 1
        beside = [
            comments[i] for i in range(node.lineno, (node.end_lineno or node.lineno) + 1) if i in comments
        ]
        text = " ".join(above + beside).strip()
        if text:
            out[node.target.id] = text
    return out


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args).replace("NoneType", "null")
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {_type_name(args[1])}" if args else "mapping"
    if annotation is Any:
        return "any"
    if annotation is type(None):
        return "null"
    if inspect.isclass(annotation) and _is_model(annotation):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _is_model(annotation: Any) -> bool:
    from pydantic import BaseModel

    return inspect.isclass(annotation) and issubclass(annotation, BaseModel)


def _models_in(annotation: Any) -> tuple[Any, bool]:
    """(the pydantic model a field holds, whether under mapping keys) or (None, False)."""
    if _is_model(annotation):
        return annotation, False
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            model, mapped = _models_in(arg)
            if model is not None:
                return model, mapped
    if origin is dict and args and _is_model(args[1]):
        return args[1], True
    return None, False


def _bounds(field: Any) -> str:
    marks = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    out = []
    for meta in field.metadata:
        for attr, sign in marks.items():
            value = getattr(meta, attr, None)
            if value is not None:
                out.append(f"{sign} {value}")
    return ", ".join(out)


def _default(field: Any) -> str:
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        value = field.default_factory()
        return "(defaults below)" if _is_model(type(value)) else repr(value)
    if field.default is PydanticUndefined:
        return "required"
    return "null" if field.default is None else repr(field.default)


def params_keys(model: Any = None, prefix: str = "") -> list[KeyDoc]:
    """Every key params.yaml can hold, sections first then their keys, walked from the pydantic model."""
    if model is None:
        from mlpipe.config import Params

        model = Params
    comments = _field_comments(model)
    out: list[KeyDoc] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        inner, mapped = _models_in(field.annotation)
        doc = inspect.cleandoc(inner.__doc__ or "") if inner is not None else ""
        if inner is not None and doc.startswith(
            f"{inner.__name__}("
        ):  # pydantic's generated docstring: no words of ours
            doc = ""
        text = " ".join(x for x in (comments.get(name, ""), " ".join(doc.split())) if x)
        out.append(
            KeyDoc(
                key, _type_name(field.annotation), _default(field), _bounds(field), text, inner is not None
            )
        )
        if inner is not None:
            out += params_keys(inner, f"{key}.{MAP_KEY}." if mapped else f"{key}.")
    return out


YAML_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w.-]*):(?P<rest>.*)$")


def yaml_comments(text: str) -> dict[str, str]:
    """{dotted key: the comment written beside it} of a params.yaml in the block style the project writes
    (two-space indents; a comment-only line right below a key's line continues its comment)."""
    stack: list[tuple[int, str]] = []
    out: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if last and line.startswith(" " * 20):  # a continuation, aligned under the comment above
                out[last] = f"{out[last]} {stripped.lstrip('#').strip()}".strip()
            continue
        match = YAML_KEY.match(line)
        if not match:
            last = ""
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        last = ".".join(k for _, k in stack)
        _, hash_, comment = match["rest"].partition(" #")
        out[last] = comment.strip() if hash_ else ""
    return {k: v for k, v in out.items() if v}


def _bundled_value(values: dict, key: str) -> str:
    node: Any = values
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return ""
        node = node[part]
    return str(node)


def params_markdown(keys: list[KeyDoc] | None = None, params_yaml: Path | None = None) -> str:
    """The params page: each key from the model; beside it the bundled project's value and the comment its
    params.yaml writes there, when `params_yaml` is given."""
    import yaml

    keys = params_keys() if keys is None else keys
    text = params_yaml.read_text() if params_yaml is not None else ""
    values = yaml.safe_load(text) or {} if text else {}
    comments = yaml_comments(text)
    lines = [
        *NO_TOC,
        "# params.yaml reference",
        "",
        "Generated from `mlpipe.config.Params` (the pydantic model every reader of params.yaml goes",
        "through) at every docs build (`scripts/docs_reference.py`): each key, its type, default and bounds,",
        "and the comment or docstring beside it in the code; then the bundled project's value and the",
        "comment beside it in its `params.yaml`. Unknown keys are refused (`extra=forbid`), with a",
        f"did-you-mean; `{MAP_KEY}` stands for a key of your own (a column, a metric, a hyperparameter).",
        "",
        "| key | type | default | bounds | what | bundled project |",
        "|---|---|---|---|---|---|",
    ]
    for k in keys:
        shown = f"**`{k.key}`**" if k.section else f"`{k.key}`"
        bundled = "" if k.section else _bundled_value(values, k.key)
        note = comments.get(k.key, "")
        if bundled and note:
            bundled = f"`{bundled}`: {note}"
        elif bundled:
            bundled = f"`{bundled}`"
        else:
            bundled = note
        lines.append(
            f"| {shown} | {_cell(k.type_)} | {_cell(k.default)} | {_cell(k.bounds)} | {_cell(k.help)} "
            f"| {_cell(bundled)} |"
        )
    return "\n".join(lines) + "\n"


# ---- errors, layers, stages, benchmarks ----------------------------------------------------------------


def errors_markdown() -> str:
    """The exit codes (mlpipe.errors' EXIT_* constants, with their comments) and every refusal class."""
    from mlpipe import errors

    comments = {}
    for tok in tokenize.generate_tokens(io.StringIO(inspect.getsource(errors)).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    source = inspect.getsource(errors).splitlines()
    codes = [
        (int(getattr(errors, name)), name, comments.get(i + 1, ""))
        for i, line in enumerate(source)
        for name in [line.split("=")[0].strip()]
        if name.startswith("EXIT_") and hasattr(errors, name)
    ]
    lines = [
        *NO_TOC,
        "# Errors and exit codes",
        "",
        "Generated from `mlpipe.errors` at every docs build. A known refusal prints one line",
        "`mlpipe: <message>` and exits with its class's code; anything else is a bug and keeps its",
        "traceback.",
        "",
        "| exit code | constant | when |",
        "|---|---|---|",
        *(f"| {code} | `{name}` | {_cell(text)} |" for code, name, text in sorted(codes)),
        "",
        "| refusal | is a | exit code | what |",
        "|---|---|---|---|",
    ]
    for name, cls in vars(errors).items():
        if inspect.isclass(cls) and issubclass(cls, errors.MlpipeError):
            bases = ", ".join(b.__name__ for b in cls.__bases__)
            doc = " ".join((cls.__doc__ or "").split())
            lines.append(f"| `{name}` | {bases} | {cls.exit_code} | {_cell(doc)} |")
    return "\n".join(lines) + "\n"


def _module_file(root: Path, module: str) -> Path | None:
    """The file of `module` in this repository (src/ layout)."""
    path = (root / "src").joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None


def _docstring(path: Path | None, first_sentence: bool = False) -> str:
    """A module's docstring, read from its source (nothing imported)."""
    if path is None:
        return ""
    doc = " ".join((ast.get_docstring(ast.parse(path.read_text())) or "").split())
    if first_sentence:
        match = re.match(r"(.+?\.)(\s|$)", doc)
        doc = match[1] if match else doc
        if len(doc) > 240:  # a first sentence that runs on: its start, cut at a word
            doc = doc[:240].rsplit(" ", 1)[0] + " ..."
    return doc


def modules_markdown(root: Path) -> str:
    """Every module of mlpipe (its flows included) with the first sentence of its docstring, package by
    package."""
    lines = ["| module | what it is for |", "|---|---|"]
    for path in sorted((root / "src" / "mlpipe").rglob("*.py")):
        if path.name == "__init__.py" or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(root / "src")
        module = ".".join(rel.with_suffix("").parts)
        lines.append(f"| `{module}` | {_cell(_docstring(path, first_sentence=True))} |")
    return "\n".join(lines) + "\n"


def layers_markdown(root: Path) -> str:
    """The import contracts of pyproject.toml: the layers (highest first) and the other rules."""
    import tomllib

    contracts = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    lines = ["| layer (highest first) | package | what it holds |", "|---|---|---|"]
    for contract in contracts:
        if contract["type"] != "layers":
            continue
        for depth, layer in enumerate(contract["layers"], 1):
            for module in (m.strip() for m in layer.split("|")):
                doc = _docstring(_module_file(root, module))
                lines.append(f"| {depth} | `{module}` | {_cell(doc)} |")
    lines += ["", "The other contracts:", ""]
    lines += [f"- {c['name']}" for c in contracts if c["type"] != "layers"]
    return "\n".join(lines) + "\n"


def stages_markdown(dvc_yaml: Path) -> str:
    import yaml

    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    lines = ["| stage | command | params | outs |", "|---|---|---|---|"]
    for name, stage in stages.items():
        outs = [o if isinstance(o, str) else next(iter(o)) for o in stage.get("outs", [])]
        lines.append(
            f"| `{name}` | `{stage['cmd']}` | {', '.join(map(str, stage.get('params', [])))} | "
            f"{', '.join(f'`{o}`' for o in outs)} |"
        )
    return "\n".join(lines) + "\n"


def _scalar_rows(value: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    if isinstance(value, dict) and depth < 2:
        return [r for k, v in value.items() for r in _scalar_rows(v, f"{prefix}{k}.", depth + 1)]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return [(prefix.rstrip("."), str(value))]
    return []


def bench_results_markdown(results: Path) -> str:
    """The committed figures of bench/results/*.json: each file's scalar figures (two levels deep)."""
    import json

    lines = [
        "# Benchmark results (the committed JSON)",
        "",
        "Generated at every docs build from `bench/results/*.json`, as the last `make bench` (or the named",
        "script) wrote them: each file's figures up to two levels deep; the files hold the rest (per-run",
        "lists, per-column verdicts). What each figure means and its same-run baseline are in",
        "[the benchmark table](table.md).",
        "",
    ]
    for path in sorted(results.glob("*.json")):
        rows = _scalar_rows(json.loads(path.read_text()))
        lines += [f"## `{path.name}`", "", "| figure | value |", "|---|---|"]
        lines += [f"| `{_cell(k)}` | {_cell(v)} |" for k, v in rows] or ["| (no scalar figures) | |"]
        lines.append("")
    return "\n".join(lines) + "\n"


def bench_table_markdown(readme: Path) -> str:
    """bench/README.md as a page of the site, as committed (the one table of every figure and its notes)."""
    text = readme.read_text()
    return text.replace("# Benchmarks", "# Benchmark table (bench/README.md)", 1)


# ---- the MkDocs hook -----------------------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    """Adds the two generated pages to the build (MkDocs >= 1.6: File.generated)."""
    from mkdocs.structure.files import File

    root = Path(config["config_file_path"]).parent
    if str(root / "src") not in sys.path:
        sys.path.insert(0, str(root / "src"))
    pages = {
        CLI_PAGE: cli_markdown(),
        PARAMS_PAGE: params_markdown(params_yaml=root / "params.yaml"),
        ERRORS_PAGE: errors_markdown(),
        "benchmarks/table.md": bench_table_markdown(root / "bench" / "README.md"),
        "benchmarks/results.md": bench_results_markdown(root / "bench" / "results"),
    }
    for uri, text in pages.items():
        files.append(File.generated(config, uri, content=text))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fills the architecture page's generated tables (layers from the import contracts, stages from
    dvc.yaml)."""
    root = Path(config["config_file_path"]).parent
    if LAYERS_MARK in markdown:
        markdown = markdown.replace(LAYERS_MARK, layers_markdown(root))
    if MODULES_MARK in markdown:
        markdown = markdown.replace(MODULES_MARK, modules_markdown(root))
    if STAGES_MARK in markdown:
        markdown = markdown.replace(STAGES_MARK, stages_markdown(root / "dvc.yaml"))
    return markdown


if __name__ == "__main__":
    page = sys.argv[1] if len(sys.argv) > 1 else ""
    if page not in ("cli", "params"):
        sys.exit("usage: python scripts/docs_reference.py cli|params")
    here = Path(__file__).resolve().parents[1]
    sys.stdout.write(cli_markdown() if page == "cli" else params_markdown(params_yaml=here / "params.yaml"))
