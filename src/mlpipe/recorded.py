"""Has this exact state been recorded already? The identity of a training run in MLflow (commit, data,
model, params from a clean tree), kept free of heavy imports so `mlpipe run` can ask before starting a flow."""

from __future__ import annotations

IDENTITY_KEYS = ("mlpipe.model_sha256", "mlpipe.git_commit", "mlpipe.data_md5", "mlpipe.params_sha256")


def find_recorded_run(client, experiment_id: str, tags: dict[str, str]):
    """A finished run already recorded for this exact model, commit and data from a clean tree, or None.

    Runs that never finished (a killed process) do not count: their record may be half written.
    """
    if tags["mlpipe.git_dirty"] != "false" or not tags["mlpipe.git_commit"]:
        return None
    filt = " and ".join(f"tags.`{k}` = '{tags[k]}'" for k in IDENTITY_KEYS)
    filt += " and tags.`mlpipe.git_dirty` = 'false' and attributes.status = 'FINISHED'"
    runs = client.search_runs([experiment_id], filter_string=filt, max_results=1, order_by=["attributes.start_time DESC"])
    return runs[0] if runs else None
