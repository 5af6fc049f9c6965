"""The computation dvc.yaml runs: stage entry points, features, training, evaluation, the stage runner,
the sweep."""
