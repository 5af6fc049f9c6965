"""Which mlpipe a project pins, and whether the running one is it.

A project made by `mlpipe init` carries mlpipe's wheel (DVC-tracked under vendor/), names it in its
pyproject.toml and uv.lock, and records in `[tool.mlpipe]` the version and the code hash of that wheel. The
code hash is the sha256 over the sorted (path, sha256 of content) of every file of the packages mlpipe ships
(`mlpipe/`; a wheel made before the flows moved into it also ships `flows/`): the same figure whether read
from a wheel or from the running package's folders, so an edit that is in no release still changes it."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import tomllib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mlpipe.errors import Refused

PYPROJECT = "pyproject.toml"
LOCK_FILE = "uv.lock"
VENDOR = "vendor"  # mlpipe's wheel, DVC-tracked: `dvc pull` brings it back on another machine
VENDOR_DVC = "vendor.dvc"
CODE_PACKAGES = ("mlpipe",)  # the top-level package mlpipe's wheel ships
# what a wheel or source tree of any mlpipe ships: the flows were a top-level package before mlpipe.flows,
# and an older pinned wheel's code hash must read the same as it did
SHIPPED_PACKAGES = ("mlpipe", "flows")
UPGRADE = "mlpipe upgrade"


@dataclass(frozen=True)
class MlpipeId:
    """An mlpipe: its version and code hash (and, when pinned, the project-relative path of its wheel)."""

    version: str
    code_sha256: str
    wheel: str = ""

    def short(self) -> str:
        return f"{self.version} (code {self.code_sha256[:12]})"


def code_digest(files: Iterable[tuple[str, bytes]]) -> str:
    """sha256 over the sorted lines `<path> <sha256 of content>` of `files` (path relative to the
    packages' parent, '/'-separated). Pure."""
    lines = sorted(f"{path} {hashlib.sha256(data).hexdigest()}\n" for path, data in files)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _shipped(path: str) -> bool:
    top, _, rest = path.partition("/")
    return top in SHIPPED_PACKAGES and bool(rest) and "__pycache__" not in path and not path.endswith(".pyc")


def wheel_code_sha256(wheel: Path) -> str:
    """The code hash of the packages a wheel ships."""
    with zipfile.ZipFile(wheel) as zf:
        return code_digest((n, zf.read(n)) for n in zf.namelist() if _shipped(n) and not n.endswith("/"))


def package_files(package: str) -> list[tuple[str, bytes]]:
    """(path under the package's parent, bytes) of every file of the importable `package`."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    return folder_files(Path(next(iter(spec.submodule_search_locations))), package)


def folder_files(folder: Path, package: str) -> list[tuple[str, bytes]]:
    """(path under the package's parent, bytes) of every file shipped from the package folder `folder`."""
    if not folder.is_dir():
        return []
    files = (p for p in sorted(folder.rglob("*")) if p.is_file())
    return [
        (rel, p.read_bytes())
        for p in files
        if _shipped(rel := f"{package}/{p.relative_to(folder).as_posix()}")
    ]


def source_tree_code_sha256(root: Path) -> str:
    """The code hash of mlpipe's source tree at `root` (src/mlpipe, and flows/ at the root in a tree from
    before mlpipe.flows, as its wheel ships them)."""
    return code_digest(
        [*folder_files(root / "src" / "mlpipe", "mlpipe"), *folder_files(root / "flows", "flows")]
    )


def running_mlpipe() -> MlpipeId:
    """The version and code hash of the mlpipe this process runs."""
    files = [f for package in CODE_PACKAGES for f in package_files(package)]
    return MlpipeId(running_version(), code_digest(files))


def running_version() -> str:
    """mlpipe's version as installed, or, when it runs from a source tree on the import path without being
    installed (a commit's locked environment of the bundled project: `uv sync --no-install-project`), as
    that tree's pyproject.toml names it."""
    try:
        return importlib.metadata.version("mlpipe")
    except importlib.metadata.PackageNotFoundError:
        spec = importlib.util.find_spec("mlpipe")
        origin = Path(spec.origin) if spec and spec.origin else None
        pyproject = origin.parents[2] / PYPROJECT if origin is not None else None
        if pyproject is not None and pyproject.is_file():
            return tomllib.loads(pyproject.read_text()).get("project", {}).get("version", "unknown")
        return "unknown"


def pin_table(pin: MlpipeId) -> str:
    """The `[tool.mlpipe]` table of a project's pyproject.toml naming `pin`. Pure."""
    return (
        "[tool.mlpipe]\n"
        "# the mlpipe this project is trained with: `mlpipe upgrade` moves it to the running one\n"
        f'version = "{pin.version}"\n'
        f'code_sha256 = "{pin.code_sha256}"\n'
        f'wheel = "{pin.wheel}"\n'
    )


def read_pin(root: Path) -> MlpipeId | None:
    """The mlpipe `root`'s pyproject.toml pins, None when it pins none (no file, or no `[tool.mlpipe]`)."""
    path = Path(root) / PYPROJECT
    if not path.exists():
        return None
    table = tomllib.loads(path.read_text()).get("tool", {}).get("mlpipe")
    if not table:
        return None
    return MlpipeId(table["version"], table["code_sha256"], table.get("wheel", ""))


def pin_mismatch(pinned: MlpipeId, running: MlpipeId) -> str | None:
    """Why a project pinning `pinned` must not be trained by `running`, None when it may. Pure."""
    if pinned.code_sha256 == running.code_sha256:
        return None
    return (
        f"this project pins mlpipe {pinned.short()}, the running mlpipe is {running.short()}: a model it "
        f"trains would not be the one the commit names. `{UPGRADE}` moves the project to the running mlpipe "
        "(re-locks and commits; the next `mlpipe run` retrains through the gate), or run the pinned one"
    )


def require_pinned_mlpipe(root: Path) -> None:
    """Refused (one line naming both mlpipes and `mlpipe upgrade`) when `root` pins an mlpipe other than
    the running one, or pins none (a project made before pins); mlpipe's own source tree runs its own code."""
    pinned = read_pin(root)
    if pinned is None and not (Path(root) / "src" / "mlpipe").is_dir():
        raise Refused(unpinned_project(root))
    if pinned is not None and (why := pin_mismatch(pinned, running_mlpipe())):
        raise Refused(why)


def unpinned_project(root: Path) -> str:
    """Why a project that pins no mlpipe (made by an mlpipe before pins) must not train: a model it trains
    could not be rebuilt once mlpipe changes. Pure."""
    return (
        f"{root}: this project pins no mlpipe ({PYPROJECT} has no [tool.mlpipe]: made before mlpipe pinned "
        f"its projects), so its models would not reproduce after an mlpipe upgrade (rule: a project trains "
        f"with the mlpipe its commit pins); `{UPGRADE}` pins the running one and commits"
    )
