"""Registry moves are checked against what was judged: the gate promotes only while `champion` still names
the version it judged against (compare-and-set under the registry lock), and a rollback moves to the very
version it verified. The decision is pure; the moves run on a real MLflow SQLite registry."""

from __future__ import annotations

import pytest

from mlpipe.errors import PromotionRefused
from mlpipe.registry.aliases import CHAMPION, PREVIOUS, alias_version, move_champion, rollback
from mlpipe.registry.client import mlflow_client
from mlpipe.release.gate import move_decision, promote_unless_moved

MODEL = "flights-late"


def test_an_unmoved_champion_is_replaced():
    assert move_decision(MODEL, "5", "3", "3") == (True, "promoted")
    assert move_decision(MODEL, "1", None, None) == (True, "promoted")  # the first model


@pytest.mark.parametrize(
    ("judged", "now", "moved"),
    [
        ("3", "2", "from 3 to 2"),
        (None, "4", "from none to 4"),
        ("3", None, "from 3 to none"),
        ("3", "5", "from 3 to 5"),
    ],
)
def test_a_champion_that_moved_while_judging_is_kept_and_the_decision_says_so(judged, now, moved):
    move, decision = move_decision(MODEL, "5", judged, now)
    assert not move
    assert decision.startswith(f"kept champion: the champion moved {moved} while version 5 was judged")
    assert f"`mlpipe promote models:/{MODEL}/5 --reason ...`" in decision and "\n" not in decision


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One real MLflow SQLite registry for the module (creating one takes seconds)."""
    return mlflow_client(f"sqlite:///{tmp_path_factory.mktemp('registry') / 'mlflow.db'}")


@pytest.fixture
def registry(store, tmp_path, request):
    """(the client, a model of this test's own with versions 1..4; champion 3, previous 2)."""
    name = f"{MODEL}-{request.node.name[5:40]}"
    store.create_registered_model(name)
    for _ in range(4):
        store.create_model_version(name, source=str(tmp_path / "model"))
    move_champion(store, name, "2")
    move_champion(store, name, "3")
    return store, name


def test_the_gate_keeps_a_champion_rolled_back_while_it_judged(tmp_path, registry):
    client, name = registry
    judged = alias_version(client, name, CHAMPION)  # "3", when the gate starts judging version 4
    rollback(client, name, "by hand, meanwhile", lambda version: None)  # champion 3 -> 2
    decision, replaced = promote_unless_moved(tmp_path, client, name, "4", judged)
    assert decision.startswith("kept champion: the champion moved from 3 to 2 while version 4 was judged")
    assert replaced is None and alias_version(client, name, CHAMPION) == "2"
    decision, replaced = promote_unless_moved(tmp_path, client, name, "4", "2")  # judged against 2
    assert (decision, replaced) == ("promoted", "2")
    assert (alias_version(client, name, CHAMPION), alias_version(client, name, PREVIOUS)) == ("4", "2")


def test_a_rollback_moves_to_the_version_it_verified_even_if_previous_moves_meanwhile(registry):
    client, name = registry
    verified = []

    def verify(version: str) -> None:
        verified.append(version)
        client.set_registered_model_alias(name, PREVIOUS, "1")  # a writer that takes no lock

    assert rollback(client, name, "latency", verify) == ("3", "2")
    assert verified == ["2"] and alias_version(client, name, CHAMPION) == "2"


def test_a_rollback_whose_version_fails_verification_moves_nothing(registry):
    client, name = registry

    def refuse(version: str) -> None:
        raise PromotionRefused(f"rollback: models:/{name}/{version} fails its checks, not made champion")

    with pytest.raises(PromotionRefused, match=f"models:/{name}/2 fails its checks"):
        rollback(client, name, "latency", refuse)
    assert (alias_version(client, name, CHAMPION), alias_version(client, name, PREVIOUS)) == ("3", "2")


def test_the_champion_marker_of_the_runs_table_moves_with_the_alias(store, tmp_path):
    from mlpipe.registry import tags as tag

    name = f"{MODEL}-marker"
    store.create_registered_model(name)
    exp = store.create_experiment("marker")
    runs = [store.create_run(exp).info.run_id for _ in range(3)]
    for run_id in runs:
        store.create_model_version(name, source=str(tmp_path / "model"), run_id=run_id)

    def marked() -> list[str]:
        return [store.get_run(r).data.tags.get(tag.CHAMPION_RUN, "") for r in runs]

    move_champion(store, name, "1")
    move_champion(store, name, "2")
    assert marked() == ["", "champion", ""]
    rollback(store, name, "latency", lambda version: None)  # champion 2 -> 1
    assert marked() == ["champion", "", ""]
