"""DVC plots that render without the internet. `dvc plots show` writes HTML that loads vega, vega-lite and
vega-embed from a CDN, so offline its Vega plots vanish (the PNGs stay). Here the same HTML is written
through a template of our own (`dvc plots show --html-template`) with those libraries inlined, from the
vl-convert-python wheel, which ships them: the page needs nothing but itself and its images."""

from __future__ import annotations

import html
import re
import tempfile
from pathlib import Path

from mlpipe.errors import MissingInput
from mlpipe.runtime.shell import run_tool

# DVC's plot templates are Vega-Lite v5 specs: the matching library, so vega-embed warns of no mismatch.
VEGA_LITE_VERSION = "5.21"
DVC_PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")  # dvc_render.html.HTML.embed
# DVC fills {plot_divs}; the template has no {scripts}, which DVC would fill with its CDN <script> tags.
PAGE = """<!DOCTYPE html>
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


def offline_template(bundle: str, title: str) -> str:
    """A `dvc plots show --html-template` page with `bundle` (the libraries' JavaScript) inlined."""
    if "</script" in bundle.lower():  # would end the inline <script> early
        raise ValueError("the JavaScript bundle holds '</script': it cannot be inlined")
    if any(p in bundle for p in DVC_PLACEHOLDERS):  # DVC would replace it inside the code
        raise ValueError(f"the JavaScript bundle holds one of DVC's placeholders {DVC_PLACEHOLDERS}")
    return PAGE.replace("{title}", html.escape(title)).replace("{bundle}", bundle)


def vega_bundle() -> str:
    """vega, vega-lite and vega-embed as one script that sets window.vegaEmbed (what DVC's divs call)."""
    import vl_convert

    return vl_convert.javascript_bundle(vl_version=VEGA_LITE_VERSION)


def render_offline_plots(root: Path, out: Path, title: str) -> Path:
    """Write the project's DVC plots (dvc.yaml `plots:`) to `out`/index.html, rendering offline; returns
    that file. Raises MissingInput when there is nothing to plot yet (the evaluate stage has not run)."""
    out = out if out.is_absolute() else root / out
    with tempfile.TemporaryDirectory(prefix="mlpipe-plots-") as tmp:
        template = Path(tmp) / "offline.html"
        template.write_text(offline_template(vega_bundle(), title), encoding="utf-8")
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
