"""The offline plots page: DVC's template with the Vega libraries inlined, and plots without data told
apart from plots with data."""

from __future__ import annotations

import pytest

from mlpipe.runtime.offline_plots import DVC_PLACEHOLDERS, empty_plots, offline_template, vega_bundle


def test_the_template_inlines_the_libraries_and_leaves_dvc_only_the_plot_divs():
    page = offline_template("window.vegaEmbed = function () {};", "flights <late>: DVC plots")
    assert '<script type="text/javascript">\nwindow.vegaEmbed = function () {};\n    </script>' in page
    assert "<title>flights &lt;late&gt;: DVC plots</title>" in page
    assert "{plot_divs}" in page and "{scripts}" not in page  # {scripts}: DVC's CDN <script src> tags
    assert "src=" not in page


@pytest.mark.parametrize("bad", ["a = '</SCRIPT>';", *(f"x = '{p}';" for p in DVC_PLACEHOLDERS)])
def test_a_bundle_that_cannot_be_inlined_is_refused(bad):
    with pytest.raises(ValueError, match="bundle"):
        offline_template(bad, "t")


def test_the_bundle_sets_vega_embed_and_has_no_remote_script():
    bundle = vega_bundle()
    assert "window.vegaEmbed=" in bundle and "window.vegaLite=" in bundle
    assert "</script" not in bundle.lower()


def test_plots_without_data_are_named():
    from dvc_render.vega import VegaRenderer  # DVC's own div, as it writes it into the page

    page = VegaRenderer.DIV.format(id="ROC", partial="{}") + VegaRenderer.DIV.format(
        id="Confusion", partial='{"data": {"values": []}}'
    )
    assert empty_plots(page) == ["ROC"]


@pytest.fixture
def project(tmp_path, monkeypatch) -> dict:
    """A project's .dvc/ holding a worktree's config.local, and a bundle that counts its builds."""
    from mlpipe.runtime import offline_plots

    root = tmp_path / "flights"
    (root / ".dvc").mkdir(parents=True)
    (root / ".dvc" / "config.local").write_text("[cache]\n    dir = /shared/cache\n")
    built = []
    monkeypatch.setattr(offline_plots, "vega_bundle", lambda: built.append(1) or "window.vegaEmbed = 1;")
    return {"root": root, "built": built, "module": offline_plots}


def test_the_template_is_written_once_and_named_in_config_local(project):
    from mlpipe.runtime.dvc_config import local_config_value
    from mlpipe.runtime.offline_plots import TEMPLATE, ensure_offline_template, template_is_current

    root = project["root"]
    assert not template_is_current(root)
    path, written = ensure_offline_template(root)
    assert written and path == root / ".dvc" / TEMPLATE and project["built"] == [1]
    page = path.read_text()
    assert "window.vegaEmbed = 1;" in page and "<title>flights: DVC plots</title>" in page
    assert local_config_value(root / ".dvc", "plots", "html_template") == "tmp/mlpipe-plots.html"
    assert local_config_value(root / ".dvc", "cache", "dir") == "/shared/cache"  # kept
    assert template_is_current(root)
    config = (root / ".dvc" / "config.local").read_text()
    assert ensure_offline_template(root) == (path, False)  # current: nothing built, nothing written
    assert project["built"] == [1] and path.read_text() == page
    assert (root / ".dvc" / "config.local").read_text() == config


def test_a_stale_template_is_rewritten(project, monkeypatch):
    from mlpipe.runtime.offline_plots import ensure_offline_template, template_is_current

    root = project["root"]
    path, _ = ensure_offline_template(root)
    monkeypatch.setattr(project["module"], "VEGA_LITE_VERSION", "5.99")  # e.g. a newer Vega-Lite
    assert not template_is_current(root)
    assert ensure_offline_template(root) == (path, True) and project["built"] == [1, 1]
    assert template_is_current(root)
    path.write_text(path.read_text().replace("mlpipe-plots-template", "edited"))  # its stamp lost
    assert ensure_offline_template(root) == (path, True) and project["built"] == [1, 1, 1]


def test_a_template_not_named_in_config_local_is_named_without_a_rebuild(project):
    from mlpipe.runtime.offline_plots import ensure_offline_template, template_is_current

    root = project["root"]
    ensure_offline_template(root)
    (root / ".dvc" / "config.local").write_text("[cache]\n    dir = /shared/cache\n")  # a worktree's own
    assert not template_is_current(root)
    assert ensure_offline_template(root)[1] is False and project["built"] == [1]
    assert template_is_current(root)
