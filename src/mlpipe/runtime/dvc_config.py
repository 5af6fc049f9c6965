"""The git-ignored `.dvc/config.local`: settings merged into it, never written over. DVC's own file format
(configobj, which DVC reads it with), so every key already there (a worktree's shared cache and remotes, a
user's own) stays as it was."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

LOCAL_CONFIG = "config.local"


def merge_local_config(dvc_dir: Path, settings: dict[str, dict[str, str]]) -> bool:
    """Set `settings` ({section: {key: value}}; a remote's section is `remote "name"`, as DVC names it)
    in `dvc_dir`/config.local, keeping all else it holds. Writes only when a value differs, in one
    replace (a DVC command reading it meanwhile sees the old file or the new one); True when it wrote."""
    from configobj import ConfigObj

    path = dvc_dir / LOCAL_CONFIG
    conf = ConfigObj(_lines(path))
    conf.indent_type = "    "  # as DVC writes its config
    changed = False
    for name, values in settings.items():
        section = conf.setdefault(name, {})
        for key, value in values.items():
            if section.get(key) != value:
                section[key] = value
                changed = True
    if not changed:
        return False
    write_replacing(path, "\n".join(conf.write()) + "\n")  # no filename: write() returns the lines
    return True


def local_config_value(dvc_dir: Path, section: str, key: str) -> str | None:
    """One value of `dvc_dir`/config.local, None when the file, section or key is missing."""
    from configobj import ConfigObj

    found = ConfigObj(_lines(dvc_dir / LOCAL_CONFIG)).get(section, {})
    return found.get(key) if isinstance(found, dict) else None


def _lines(path: Path) -> list[str]:
    """The file's lines, none when it is absent."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def write_replacing(path: Path, text: str, mode: int = 0o600) -> None:
    """Write `text` to `path` through a temporary file beside it and one rename: never a half-written file
    (0600 by default: a config.local may hold a remote's credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
