"""What a landed batch is called under data/: readable, deterministic, never a name another batch holds."""

from __future__ import annotations

import pytest

from mlpipe.data.naming import data_names, named_after, preferred_name, safe_stem


def test_two_files_of_one_stem_in_one_run_get_two_names():
    assert data_names(["b2.csv", "b2.parquet"], []) == ["b2.parquet", "b2-1.parquet"]


def test_a_stem_taken_by_an_earlier_run_or_the_initial_data_gets_the_next_free_number():
    held = ["b2.parquet", "b2-1.parquet", "batch-0-initial.parquet"]
    assert data_names(["b2.csv", "batch-0-initial.csv"], held) == [
        "b2-2.parquet",
        "batch-0-initial-1.parquet",
    ]


def test_the_same_file_landed_twice_never_shares_a_name():
    first = data_names(["b2.csv"], [])
    assert data_names(["b2.csv"], first) == ["b2-1.parquet"], "landed again after it was taken in"
    assert data_names(["b2.csv", "b2.csv"], []) == ["b2.parquet", "b2-1.parquet"]


def test_a_users_numbered_stem_and_a_numbered_collision_do_not_meet():
    names = data_names(["b2-1.csv", "b2.csv", "b2.parquet"], [])
    assert names == ["b2-1.parquet", "b2.parquet", "b2-2.parquet"] and len(set(names)) == 3


def test_names_differing_only_in_case_are_one_name():
    # one file on a case-insensitive file system (macOS, Windows)
    assert data_names(["B2.csv", "b2.parquet"], ["other.parquet"]) == ["B2.parquet", "b2-1.parquet"]
    assert data_names(["B2.csv"], ["b2.parquet"]) == ["B2-1.parquet"]


@pytest.mark.parametrize(
    ("landed", "stem"),
    [
        ("..csv", "unnamed"),
        ("...parquet", "unnamed"),
        (".hidden.csv", "hidden"),
        ("my batch (2).csv", "my-batch-2"),
        ("données été.csv", "donnees-ete"),
        ("a/../b:c*d?.csv", "b-c-d"),
        ("x..y.csv", "x.y"),
        ("--x--.csv", "x"),
        ("batch-2013-07-01.parquet", "batch-2013-07-01"),
        ("feedback-1-500.1.parquet", "feedback-1-500.1"),
        ("a" * 300 + ".csv", "a" * 100),
    ],
)
def test_odd_names_become_a_readable_stem_of_safe_characters(landed, stem):
    assert safe_stem(landed) == stem
    assert preferred_name(landed) == stem + ".parquet"


def test_a_name_of_dots_never_becomes_a_hidden_file_or_meets_another_name_of_dots():
    assert data_names(["..csv", "..parquet", "unnamed.csv"], []) == [
        "unnamed.parquet",
        "unnamed-1.parquet",
        "unnamed-2.parquet",
    ]


def test_no_batch_takes_the_name_whose_rows_file_holds_the_initial_rows_set_aside():
    assert data_names(["initial.csv"], []) == ["initial-1.parquet"]


def test_period_batches_keep_their_names_and_time_order_even_when_numbered():
    held = ["batch-2013-01-01.parquet", "batch-2013-01-08.parquet"]
    landed = ["batch-2013-01-08.parquet", "batch-2013-01-15.parquet", "batch-2013-01-22.parquet"]
    names = data_names(landed, held)
    assert names == ["batch-2013-01-08-1.parquet", "batch-2013-01-15.parquet", "batch-2013-01-22.parquet"]
    ordered = sorted([*held, *names])
    periods = [n[len("batch-") : len("batch-2013-01-08")] for n in ordered]
    assert periods == sorted(periods), "data/'s name order is still its time order"


def test_the_same_inputs_give_the_same_names():
    landed, held = ["b2.csv", "b2.parquet", "x y.csv"], ["b2.parquet"]
    assert data_names(landed, held) == data_names(list(landed), list(held))


def test_a_file_an_interrupted_run_wrote_is_known_by_its_batch_name():
    assert named_after("b2.parquet", "b2.csv") and named_after("b2-3.parquet", "b2.csv")
    assert named_after("b2.parquet.tmp", "b2.csv"), "a write cut short"
    assert named_after("my-batch.parquet", "my batch.csv")
    assert not named_after("b22.parquet", "b2.csv") and not named_after("notes.parquet", "b2.csv")
