"""`mlpipe serve --model` loads the model to refuse it before the service starts; the service then serves
that very model: the holder is handed it and fetches nothing (a model loaded once, not twice)."""

from __future__ import annotations

from types import SimpleNamespace

from mlpipe.serving.holder import ModelHolder


def holder_fetching(fetched: list) -> ModelHolder:
    def fetch(ref: str):
        fetched.append(ref)
        return SimpleNamespace(version="2")

    return ModelHolder("m", fetch, watch_alias=None, poll_s=60.0, swaps=None)


def test_a_model_loaded_before_the_start_is_served_without_fetching_it_again():
    fetched: list = []
    holder, loaded = holder_fetching(fetched), SimpleNamespace(version="1")
    holder.start("models:/m/1", client=None, loaded=loaded)
    assert holder.served is loaded and fetched == [] and holder.refusal() is None


def test_without_one_the_start_fetches_the_ref():
    fetched: list = []
    holder = holder_fetching(fetched)
    holder.start("models:/m/2", client=None)
    assert fetched == ["models:/m/2"] and holder.served.version == "2"
