"""A project's own locked environment, written by `mlpipe init` and `mlpipe upgrade`: mlpipe's wheel built
from the running mlpipe into vendor/ (DVC-tracked, pushed to the project's remote), a pyproject.toml that
depends on it, and a uv.lock, all committed with the project, so that its commit alone names the code and
every package its models are trained with.

The lock is mlpipe's own uv.lock (the versions the running mlpipe was installed and tested with) re-rooted
on the project: the same packages, sources and hashes, with mlpipe taken from the wheel. uv resolves
nothing offline without its index pages, which a `uv sync --frozen` install never fetched; uv itself then
checks the written lock (`uv lock --locked --offline`), so a lock uv would not have written is refused."""

from __future__ import annotations

import re
import shutil
import tempfile
import tomllib
from pathlib import Path

import mlpipe
from mlpipe.errors import Refused
from mlpipe.runtime.hashing import sha256_file
from mlpipe.runtime.pin import (
    LOCK_FILE,
    PYPROJECT,
    VENDOR,
    VENDOR_DVC,
    MlpipeId,
    pin_table,
    wheel_code_sha256,
)
from mlpipe.runtime.shell import run_tool, tool_env

PACKAGE_SEP = "\n[[package]]\n"


def mlpipe_source() -> Path:
    """The source tree of the running mlpipe (its pyproject.toml and uv.lock); Refused when it runs from an
    installed wheel, which has neither."""
    root = Path(mlpipe.__file__).resolve().parents[2]
    pyproject = root / PYPROJECT
    if (
        pyproject.exists()
        and (root / LOCK_FILE).exists()
        and tomllib.loads(pyproject.read_text()).get("project", {}).get("name") == "mlpipe"
    ):
        return root
    raise Refused(
        f"mlpipe runs from {Path(mlpipe.__file__).parent}, not from its source tree: a project is pinned "
        "from mlpipe's source and uv.lock (rule: run `mlpipe init`/`mlpipe upgrade` with the mlpipe of a "
        "source checkout, `make setup` there)"
    )


def build_wheel(source: Path, dest: Path, uv: str) -> Path:
    """mlpipe's wheel built offline from `source` (uncommitted edits included) into the folder `dest`,
    whose other wheels are removed. Hatchling writes the same bytes for the same files."""
    with tempfile.TemporaryDirectory(prefix="mlpipe-wheel-") as tmp:
        proc = run_tool(
            [uv, "build", "--wheel", "--offline", "--quiet", "-o", tmp, str(source)],
            source,
            check=False,
            env=tool_env({"UV_PYTHON_DOWNLOADS": "never"}),
        )
        built = sorted(Path(tmp).glob("mlpipe-*.whl"))
        if proc.returncode != 0 or len(built) != 1:
            tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
            raise Refused(f"building mlpipe's wheel from {source} offline failed: {tail}")
        dest.mkdir(parents=True, exist_ok=True)
        for old in dest.glob("mlpipe-*.whl"):
            old.unlink()
        wheel = dest / built[0].name
        shutil.move(str(built[0]), wheel)
    return wheel


def _parse(block: str) -> dict:
    return tomllib.loads("[[package]]\n" + block)["package"][0]


def _closure(packages: list[dict], root: str) -> set[str]:
    """Names of the packages `root` needs, through dependencies and the extras they ask for. Pure."""
    by_name: dict[str, list[dict]] = {}
    for p in packages:
        by_name.setdefault(p["name"], []).append(p)
    seen: set[tuple[str, tuple[str, ...]]] = set()
    todo = [(root, ())]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for p in by_name.get(name, []):
            deps = list(p.get("dependencies", []))
            for extra in extras:
                deps += p.get("optional-dependencies", {}).get(extra, [])
            todo += [(d["name"], tuple(sorted(d.get("extra", [])))) for d in deps]
    return {name for name, _ in seen}


def _without_table(block: str, header: str) -> str:
    return re.sub(r"\n\[" + re.escape(header) + r"\]\n(?:.+\n)*", "\n", block)


def _as_wheel_dependency(block: str, wheel_rel: str, wheel_sha256: str) -> str:
    """mlpipe's own lock entry (editable, with its dev group) as a dependency installed from its wheel."""
    block = block.replace('source = { editable = "." }', f'source = {{ path = "{wheel_rel}" }}')
    block = _without_table(_without_table(block, "package.dev-dependencies"), "package.metadata.requires-dev")
    wheels = (
        f'wheels = [\n    {{ filename = "{Path(wheel_rel).name}", hash = "sha256:{wheel_sha256}" }},\n]\n'
    )
    block = re.sub(r"(\ndependencies = \[\n(?:    .*\n)*\]\n)", lambda m: m.group(1) + wheels, block, count=1)
    return re.sub(r"\n{3,}", "\n\n", block)


def project_lock_text(mlpipe_lock: str, project: str, wheel_rel: str, wheel_sha256: str) -> str:
    """A uv.lock for a virtual project `project` that depends on mlpipe's wheel at `wheel_rel`, pinning
    every other package as `mlpipe_lock` (mlpipe's own uv.lock) does; its dev-only packages left out. Pure."""
    head, *blocks = mlpipe_lock.split(PACKAGE_SEP)
    parsed = [(_parse(b), b) for b in blocks]
    keep = _closure([p for p, _ in parsed], "mlpipe")
    entries = [
        (
            p["name"],
            p.get("version", ""),
            _as_wheel_dependency(b, wheel_rel, wheel_sha256) if p["name"] == "mlpipe" else b,
        )
        for p, b in parsed
        if p["name"] in keep
    ]
    own = (
        f'name = "{project}"\nversion = "0"\nsource = {{ virtual = "." }}\ndependencies = [\n'
        f'    {{ name = "mlpipe" }},\n]\n\n[package.metadata]\n'
        f'requires-dist = [{{ name = "mlpipe", path = "{wheel_rel}" }}]\n'
    )
    entries.append((project, "0", own))
    entries.sort(key=lambda e: e[0])
    return head + PACKAGE_SEP + PACKAGE_SEP.join(b.rstrip("\n") + "\n" for _, _, b in entries)


def project_name(name: str) -> str:
    """A distribution name for the project (PEP 508: letters, digits, '-', '_', '.'). Pure."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._").lower()
    return cleaned if cleaned and cleaned != "mlpipe" else "mlpipe-project"


def pyproject_text(name: str, requires_python: str, pin: MlpipeId) -> str:
    """The project's pyproject.toml: a virtual project (never built) depending on mlpipe's wheel. Pure."""
    return (
        "# Written by `mlpipe init`: the environment this project's models are trained in. Its uv.lock pins\n"
        "# every package; mlpipe itself is the wheel under vendor/ (DVC-tracked: `dvc pull` brings it).\n"
        "[project]\n"
        f'name = "{name}"\n'
        'version = "0"\n'
        f'requires-python = "{requires_python}"\n'
        'dependencies = ["mlpipe"]\n\n'
        "[tool.uv]\npackage = false\n\n"
        "[tool.uv.sources]\n"
        f'mlpipe = {{ path = "{pin.wheel}" }}\n\n' + pin_table(pin)
    )


def check_lock(root: Path, uv: str) -> None:
    """uv's own word that `root`'s uv.lock is the one it would write (offline); Refused otherwise."""
    proc = run_tool(
        [uv, "lock", "--locked", "--offline"],
        root,
        check=False,
        env=tool_env({"UV_PYTHON_DOWNLOADS": "never"}),
    )
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
        raise Refused(f"{root / LOCK_FILE}: uv does not accept the project's lock offline: {tail}")


def pin_project(root: Path, name: str, uv: str) -> tuple[MlpipeId, list[str]]:
    """Pin the running mlpipe in `root`: its wheel in vendor/ (dvc add + dvc push), pyproject.toml and
    uv.lock written and checked by uv. Returns (the pin, the paths to commit)."""
    source = mlpipe_source()
    wheel = build_wheel(source, root / VENDOR, uv)
    rel = wheel.relative_to(root).as_posix()
    pin = MlpipeId(wheel.name.split("-")[1], wheel_code_sha256(wheel), rel)
    mlpipe_lock = (source / LOCK_FILE).read_text()
    requires_python = tomllib.loads(mlpipe_lock).get("requires-python", ">=3.11")
    (root / PYPROJECT).write_text(pyproject_text(project_name(name), requires_python, pin), encoding="utf-8")
    lock_text = project_lock_text(mlpipe_lock, project_name(name), rel, sha256_file(wheel))
    (root / LOCK_FILE).write_text(lock_text, encoding="utf-8")
    check_lock(root, uv)
    run_tool(["dvc", "add", "-q", VENDOR], root)
    run_tool(["dvc", "push", "-q", VENDOR_DVC], root, check=False)  # no remote yet: `mlpipe run` pushes
    return pin, [PYPROJECT, LOCK_FILE, VENDOR_DVC, ".gitignore"]


def upgrade_project(root: Path, uv: str) -> tuple[MlpipeId | None, MlpipeId, list[str]]:
    """Move `root` (a project made by `mlpipe init`, committed) to the running mlpipe: the wheel rebuilt,
    pyproject.toml and uv.lock rewritten. Returns (the pin before, if any; the new pin; the paths to
    commit). Refused on mlpipe's own source tree, which runs its own code."""
    from mlpipe.runtime.git import require_clean_tree
    from mlpipe.runtime.pin import read_pin

    if (root / "src" / "mlpipe").is_dir():
        raise Refused(f"{root}: mlpipe's own source tree runs its own code (rule: upgrade an init'd project)")
    require_clean_tree(root)
    before = read_pin(root)
    pyproject = root / PYPROJECT
    named = (
        tomllib.loads(pyproject.read_text()).get("project", {}).get("name") if pyproject.exists() else None
    )
    pin, paths = pin_project(root, named or root.name, uv)
    return before, pin, paths
