"""`mlpipe serve`'s settings live in one place (serving.settings): the CLI's options, the app's config and the
prediction log read their defaults from it, and a container sets any of them through MLPIPE_<NAME>."""

from __future__ import annotations

import inspect

import pytest
from pydantic import ValidationError

from mlpipe.cli.services import serve, serve_option
from mlpipe.serving.prediction_log import DB_TIMEOUT_S, SPOOL_MAX_BYTES
from mlpipe.serving.served import ServeConfig
from mlpipe.serving.settings import SERVE, ServeSettings, env_name


def test_every_setting_is_an_option_of_serve_with_its_default_bound_help_and_variable():
    options = inspect.signature(serve).parameters
    for name, info in ServeSettings.model_fields.items():
        assert options[name].default == getattr(SERVE, name), name
        option = serve_option(name)
        assert option.help == info.description and option.envvar == env_name(name), name
    assert serve_option("port").min == 1 and serve_option("port").max == 65535
    assert serve_option("max_records").min == 1


def test_the_app_and_the_log_take_their_defaults_from_the_settings():
    cfg = ServeConfig()
    assert (cfg.max_records, cfg.max_bytes, cfg.poll_s) == (SERVE.max_records, SERVE.max_bytes, SERVE.poll_s)
    assert (DB_TIMEOUT_S, SPOOL_MAX_BYTES) == (SERVE.log_timeout_s, SERVE.spool_max_bytes)


def test_a_value_out_of_bounds_or_an_unknown_setting_is_refused():
    with pytest.raises(ValidationError, match="max_records"):
        ServeSettings(max_records=0)
    with pytest.raises(ValidationError, match="max_recrods"):
        ServeSettings(max_recrods=5)
