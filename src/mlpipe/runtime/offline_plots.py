"""DVC plots that render without the internet. `dvc plots show` writes HTML that loads vega, vega-lite and
vega-embed from a CDN, so offline its Vega plots vanish (the PNGs stay). Here the same HTML is written
through a template of our own (`dvc plots show --html-template`) with those libraries inlined, from the
vl-convert-python wheel, which ships them: the page needs nothing but itself and its images.

The template is written once per checkout, to the git-ignored `.dvc/tmp/mlpipe-plots.html`, and named as
DVC's default (`plots.html_template` in the git-ignored `.dvc/config.local`), so plain `dvc plots show` and
`dvc plots diff` render offline too. A stamp in its first lines (a hash of what its content comes from: the
page, the Vega-Lite version, the vl-convert-python wheel's version, the title) says when it is stale."""

from __future__ import annotations

import hashlib
import html
import re
import sys
from pathlib import Path

from mlpipe.errors import MissingInput
from mlpipe.runtime.dvc_config import local_config_value, merge_local_config, write_replacing
from mlpipe.runtime.shell import run_tool

# DVC's plot templates are Vega-Lite v5 specs: the matching library, so vega-embed warns of no mismatch.
VEGA_LITE_VERSION = "5.21"
DVC_PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")  # dvc_render.html.HTML.embed
# DVC fills {plot_divs}; the template has no {scripts}, which DVC would fill with its CDN <script> tags.
PAGE = """<!DOCTYPE html>
<!-- {stamp} -->
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>{title}</title>
    <script type="text/javascript">
{bundle}
    </script>
    <style>
        body { font-family: sans-serif; }
        table { border-spacing: 15px; }
    </style>
</head>
<body>
    <h1>{title}</h1>
    {plot_divs}
</body>
</html>
"""


def empty_plots(page: str) -> list[str]:
    """The ids of the plot divs DVC wrote without data (`var spec = {};`: their data files are missing)."""
    return re.findall(r'<div id = "([^"]+)">\s*<script[^>]*>\s*var spec = \{\};', page)


# DVC's plots.html_template, relative to .dvc/ (dvc/commands/plots.py); .dvc/.gitignore ignores /tmp.
TEMPLATE = "tmp/mlpipe-plots.html"
STAMP_PREFIX = "mlpipe-plots-template "


def offline_template(bundle: str, title: str, stamp: str = "") -> str:
    """A `dvc plots show --html-template` page with `bundle` (the libraries' JavaScript) inlined."""
    if "</script" in bundle.lower():  # would end the inline <script> early
        raise ValueError("the JavaScript bundle holds '</script': it cannot be inlined")
    if any(p in bundle for p in DVC_PLACEHOLDERS):  # DVC would replace it inside the code
        raise ValueError(f"the JavaScript bundle holds one of DVC's placeholders {DVC_PLACEHOLDERS}")
    page = PAGE.replace("{stamp}", STAMP_PREFIX + stamp).replace("{title}", html.escape(title))
    return page.replace("{bundle}", bundle)


def vega_bundle() -> str:
    """vega, vega-lite and vega-embed as one script that sets window.vegaEmbed (what DVC's divs call)."""
    import vl_convert

    return vl_convert.javascript_bundle(vl_version=VEGA_LITE_VERSION)


def template_title(root: Path) -> str:
    return f"{root.name}: DVC plots"


def template_stamp(title: str) -> str:
    """The hash of everything the template's content comes from, known without building the bundle
    (~1.4 s of CPU): the page, the Vega-Lite version and the wheel that ships the libraries, the title."""
    from importlib.metadata import version

    parts = [PAGE, VEGA_LITE_VERSION, version("vl-convert-python"), title]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def template_path(root: Path) -> Path:
    return root / ".dvc" / TEMPLATE


def _holds_stamp(path: Path, stamp: str) -> bool:
    """Whether the file's first lines carry this stamp (a few hundred bytes read)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f"<!-- {STAMP_PREFIX}{stamp} -->" in f.read(200)
    except (OSError, UnicodeDecodeError):
        return False


def template_is_current(root: Path, title: str | None = None) -> bool:
    """True when the template file holds this stamp and config.local names it (no bundle built): nothing
    to write."""
    stamp = template_stamp(title or template_title(root))
    named = local_config_value(root / ".dvc", "plots", "html_template") == TEMPLATE
    return named and _holds_stamp(template_path(root), stamp)


def ensure_offline_template(root: Path, title: str | None = None) -> tuple[Path, bool]:
    """The project's offline template, (re)written when missing or stale, and named as DVC's default page
    template in .dvc/config.local (its other settings kept). Returns (its path, whether it was written)."""
    path, title = template_path(root), title or template_title(root)
    stamp = template_stamp(title)
    written = not _holds_stamp(path, stamp)
    if written:
        write_replacing(path, offline_template(vega_bundle(), title, stamp), mode=0o644)
    merge_local_config(root / ".dvc", {"plots": {"html_template": TEMPLATE}})
    return path, written


def ensure_offline_template_apart(root: Path, timeout_s: float = 300) -> bool:
    """ensure_offline_template in a process of its own, when the template is not current (checked here,
    without building anything); True when it wrote. The bundle holds the GIL while it is built: in a
    thread it would stall the caller's other threads for ~1.4 s. Raises ToolError when that process fails."""
    if template_is_current(root):
        return False
    run_tool([sys.executable, "-m", "mlpipe.runtime.offline_plots", str(root)], root, timeout_s=timeout_s)
    return True


def render_offline_plots(root: Path, out: Path, title: str | None = None) -> Path:
    """Write the project's DVC plots (dvc.yaml `plots:`) to `out`/index.html, rendering offline; returns
    that file, through the project's template (written when missing or stale). Raises MissingInput when
    there is nothing to plot yet (the evaluate stage has not run)."""
    out = out if out.is_absolute() else root / out
    template, _ = ensure_offline_template(root, title)
    page = out / "index.html"
    page.unlink(missing_ok=True)  # so a stale page is never taken for this one
    shown = run_tool(
        ["dvc", "--wait-for-lock", "plots", "show", "--html-template", str(template), "--out", str(out)],
        root,
    )
    text = page.read_text(encoding="utf-8") if page.is_file() else ""
    empty = empty_plots(text)
    if not text or empty:
        page.unlink(missing_ok=True)
        said = " ".join((shown.stderr or shown.stdout).split())
        what = ", ".join(empty) + " without data" if empty else said
        raise MissingInput(
            f"{root}: no DVC plots to show yet ({what[:300] or 'none'}; rule: run `mlpipe run` first, "
            "its evaluate stage writes them)"
        )
    return page


def main(argv: list[str] | None = None) -> int:
    """`python -m mlpipe.runtime.offline_plots ROOT`: ensure_offline_template_apart's process."""
    args = sys.argv[1:] if argv is None else argv
    try:
        path, written = ensure_offline_template(Path(args[0]).resolve())
    except (OSError, ValueError) as exc:  # one line for the caller's warning, not a traceback
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"{'wrote' if written else 'current'} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
