"""`mlpipe plots` after a run, as the README says: one HTML page with the ROC curve and the confusion matrix
that needs no internet (the Vega libraries inlined, not a script from a CDN), holding the run's own
numbers, and nothing for git to see afterwards. Plain `dvc plots show` after a run does the same: the run
named the offline template as DVC's default in the git-ignored .dvc/config.local."""

from __future__ import annotations

import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import dvc, git, mlpipe, sh

pytestmark = pytest.mark.integration

PLOTS = Path("artifacts/evaluate/plots")


class Tags(HTMLParser):
    """Every tag's (name, attributes) and the text of every inline <script>."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def _specs(scripts: list[str]) -> list[dict]:
    """The Vega-Lite specs DVC put in its plot divs (`var spec = {...}; vegaEmbed(...)`)."""
    found = []
    for text in scripts:
        match = re.search(r"var spec = (\{.*\});\s*vegaEmbed\(", text, re.S)
        if match:
            found.append(json.loads(match.group(1)))
    return found


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def shown(project_copy) -> dict:
    root = project_copy
    assert git(root, "status", "--porcelain") == ""
    proc = mlpipe(root, "plots")
    page = root / "dvc_plots" / "index.html"
    parsed = Tags()
    parsed.feed(page.read_text(encoding="utf-8"))
    return {"root": root, "proc": proc, "page": page, "parsed": parsed}


def test_the_page_loads_nothing_from_outside(shown):
    assert shown["proc"].stdout.strip() == shown["page"].as_uri()
    tags = shown["parsed"].tags
    external = [
        (tag, url)
        for tag, attrs in tags
        for key in ("src", "href")
        if (url := attrs.get(key)) and re.match(r"(https?:)?//", url)
    ]
    assert external == []
    assert [attrs for tag, attrs in tags if tag == "script" and "src" in attrs] == []
    bundle = max(shown["parsed"].scripts, key=len)
    assert "window.vegaEmbed=" in bundle.replace(" ", "") and len(bundle) > 100_000  # vega-embed inlined
    images = [attrs["src"] for tag, attrs in tags if tag == "img"]
    assert len(images) == 2  # roc.png and confusion_matrix.png, beside the page
    assert all((shown["page"].parent / src).is_file() for src in images), images


def test_the_plots_hold_the_runs_own_numbers(shown):
    root = shown["root"]
    roc, confusion = _specs(shown["parsed"].scripts)[:2]
    assert roc["title"]["text"] == "ROC on the test split"  # the titles of dvc.yaml's plots
    assert confusion["title"]["text"] == "Confusion matrix on the test split"
    expected = [(float(r["fpr"]), float(r["tpr"])) for r in _rows(root / PLOTS / "roc.csv")]
    assert len(expected) > 10
    drawn = [(float(v["fpr"]), float(v["tpr"])) for v in roc["data"]["values"]]
    assert drawn == expected
    pairs = sorted((r["actual"], r["predicted"]) for r in _rows(root / PLOTS / "confusion.csv"))
    assert sorted((str(v["actual"]), str(v["predicted"])) for v in confusion["data"]["values"]) == pairs


def test_the_specs_render_offline_with_the_inlined_library(shown):
    import vl_convert

    from mlpipe.runtime.offline_plots import VEGA_LITE_VERSION

    roc, confusion = _specs(shown["parsed"].scripts)[:2]
    roc_svg = vl_convert.vegalite_to_svg(roc, vl_version=VEGA_LITE_VERSION)
    assert "ROC on the test split" in roc_svg and 'aria-roledescription="line mark"' in roc_svg
    matrix_svg = vl_convert.vegalite_to_svg(confusion, vl_version=VEGA_LITE_VERSION)
    assert "rect mark" in matrix_svg
    # predicted across, actual down, as the PNG (scikit-learn's ConfusionMatrixDisplay) draws it
    axes = re.findall(
        r'"(x|y)": \{"field": "([^"]+)"', json.dumps({k: v for k, v in confusion.items() if k != "data"})
    )
    assert axes[:2] == [("x", "predicted"), ("y", "actual")]


def test_git_sees_nothing_after(shown):
    assert git(shown["root"], "status", "--porcelain", "--ignored=no") == ""


def test_plain_dvc_plots_show_renders_offline_after_a_run(project_copy, first_run):
    root = project_copy
    assert "event=plots_template_written" in first_run[1].stdout + first_run[1].stderr
    shown = dvc(root, "plots", "show")  # as a user types it: no --html-template
    page = root / "dvc_plots" / "index.html"
    assert shown.stdout.strip() == page.as_uri()
    text = page.read_text(encoding="utf-8")
    parsed = Tags()
    parsed.feed(text)
    assert [attrs for tag, attrs in parsed.tags if tag == "script" and "src" in attrs] == []  # all inline
    assert not re.search(r"""<script[^>]*src=["']?(https?:)?//""", text, re.I)
    assert "vegaEmbed" in max(parsed.scripts, key=len) and len(_specs(parsed.scripts)) == 2
    assert git(root, "status", "--porcelain", "--ignored=no") == ""


def test_before_any_run_it_says_so_in_one_line(template_repo, tmp_path):
    root = tmp_path / "fresh"
    sh(["git", "clone", "-q", str(template_repo), str(root)], tmp_path)
    proc = mlpipe(root, "plots", check=False)
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("mlpipe: ") and "no DVC plots to show yet" in line, proc.stderr
    assert git(root, "status", "--porcelain") == ""
