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
