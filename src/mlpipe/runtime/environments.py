"""A commit's own locked environment: the packages its uv.lock pins, whether the running environment is
that one, and, when it is not, a virtual environment built from that lock with `uv sync --frozen`,
cached under the project by the lock's sha256 and the Python major.minor, from uv's package cache
(offline: nothing is downloaded at run time)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mlpipe.errors import Refused
from mlpipe.runtime.hashing import sha256_file
from mlpipe.runtime.lock import project_lock
from mlpipe.runtime.pin import (
    MlpipeId,
    read_pin,
    running_mlpipe,
    source_tree_code_sha256,
    wheel_code_sha256,
)
from mlpipe.runtime.shell import tool_env

ENV_CACHE = Path(".mlpipe") / "envs"  # under the project root (git-ignored)
COMPLETE = ".mlpipe-complete"  # written last: a half-built environment is never reused


@dataclass(frozen=True)
class Environment:
    """Where stages run: `current` (this interpreter) or `locked` (built from the commit's uv.lock)."""

    kind: str
    python: Path
    lock_sha256: str | None = None
    reused: bool = False
    differs: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # name -> (locked, running)
    mlpipe_code: str = ""  # the code hash of the mlpipe the stages run with (runtime.pin)

    def describe(self) -> str:
        if self.kind == "current":
            where = f"the running environment ({Path(sys.prefix)})"
            if self.differs:
                return (
                    f"{where}, which differs from the commit's uv.lock in {render_differences(self.differs)}"
                )
            return f"{where}, the one the commit's uv.lock pins"
        how = "reused" if self.reused else "built"
        return (
            f"the commit's locked environment (uv.lock sha256 {(self.lock_sha256 or '')[:12]}, {how} at "
            f"{self.python.parents[1]}), because the running one differs in "
            + render_differences(self.differs)
        )


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_packages(lock_text: str) -> dict[str, str]:
    """{normalized name: version} of the registry packages a uv.lock pins (not the project itself). Pure."""
    doc = tomllib.loads(lock_text)
    return {
        normalize(p["name"]): p["version"]
        for p in doc.get("package", [])
        if "version" in p and "registry" in p.get("source", {})
    }


def differences(locked: dict[str, str], running: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """Packages the lock pins at another version than the one running. A locked package that is not
    installed here is left out (platform markers: not every pinned package applies). Pure."""
    return {n: (v, running[n]) for n, v in sorted(locked.items()) if n in running and running[n] != v}


def render_differences(diff: dict[str, tuple[str, str | None]]) -> str:
    return ", ".join(f"{n} {locked} (locked) vs {running} (running)" for n, (locked, running) in diff.items())


def running_versions() -> dict[str, str]:
    """{normalized name: version} of every distribution installed in this interpreter."""
    import importlib.metadata

    return {normalize(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}


def find_uv(root: Path) -> str:
    """uv from PATH, this interpreter's bin/ or the project's .tools/ (where `make setup` installs it)."""
    for candidate in (
        shutil.which("uv"),
        Path(sys.executable).parent / "uv",
        root / ".tools" / "bin" / "uv",
    ):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise Refused(
        "reproduce: uv is needed to build the commit's locked environment and is not installed "
        "(rule: `make setup` installs it; or pass --env current)"
    )


def env_path(cache_root: Path, lock_sha256: str, python_mm: str) -> Path:
    return cache_root / f"{lock_sha256[:16]}-py{python_mm}"


def locked_environment(project: Path, cache_root: Path, python_mm: str, uv: str) -> tuple[Path, bool]:
    """(python of the environment `project`'s uv.lock pins, reused?): `uv sync --frozen --offline`
    (no dev group, without the project itself: its code comes from the checkout on PYTHONPATH) into
    `cache_root`, keyed by the lock's sha256 and `python_mm`; built once, then reused."""
    sha = sha256_file(project / "uv.lock")
    target = env_path(cache_root, sha, python_mm)
    python = target / "bin" / "python"
    cache_root.mkdir(parents=True, exist_ok=True)
    # one builder per environment (a venv is not relocatable: it is built where it stays)
    with project_lock(target.with_name(target.name + ".lock"), timeout_s=900):
        if (target / COMPLETE).exists() and python.exists():
            return python, True
        shutil.rmtree(target, ignore_errors=True)  # a build that was interrupted
        env = tool_env({"UV_PROJECT_ENVIRONMENT": str(target), "UV_PYTHON_DOWNLOADS": "never"})
        env.pop("VIRTUAL_ENV", None)
        proc = subprocess.run(
            [uv, "sync", "--frozen", "--offline", "--no-dev", "--no-install-project", "--python", python_mm],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
            raise Refused(
                f"reproduce: cannot build the environment of the commit's uv.lock (sha256 {sha[:12]}) "
                f"offline: {tail} (rule: its packages must be in uv's cache: `uv sync --frozen` that "
                "commit once with network, or pass --env current)"
            )
        (target / COMPLETE).write_text(sha + "\n")
    return python, False


def choose_environment(mode: str, checkout: Path, root: Path, python_mm: str) -> Environment:
    """The environment to rerun `checkout`'s stages in: `current` always runs here; `auto` runs here
    when every package the commit's uv.lock pins is the version running (and the mlpipe it pins, when it
    pins one, is the one running), else in the locked one (mlpipe installed from the pinned wheel)."""
    lock = checkout / "uv.lock"
    running = running_mlpipe()
    if (checkout / "src" / "mlpipe").is_dir():  # mlpipe's own tree: the stages import the checkout's code
        running = MlpipeId(running.version, source_tree_code_sha256(checkout))
    if not lock.exists():
        return Environment("current", Path(sys.executable), mlpipe_code=running.code_sha256)
    diff = differences(locked_packages(lock.read_text()), running_versions())
    pinned = read_pin(checkout)
    if pinned and pinned.code_sha256 != running.code_sha256:
        diff["mlpipe"] = (pinned.short(), running.short())
    running_mm = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if python_mm != running_mm:
        diff["python"] = (python_mm, running_mm)
    if mode == "current" or not diff:
        return Environment("current", Path(sys.executable), differs=diff, mlpipe_code=running.code_sha256)
    python, reused = locked_environment(checkout, root / ENV_CACHE, python_mm, find_uv(root))
    sha = sha256_file(lock)
    # the pinned wheel is what uv installed there (checked against the lock's hash of it)
    code = wheel_code_sha256(checkout / pinned.wheel) if pinned else running.code_sha256
    return Environment("locked", python, sha, reused, diff, mlpipe_code=code)
