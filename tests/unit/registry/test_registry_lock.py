"""One alias move at a time per model: a second mover (another process, a real file lock) waits for the one
in progress and goes through, or refuses within its bound in one line naming what holds the lock."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlpipe.errors import LockBusy
from mlpipe.registry.aliases import registry_lock, registry_lock_path

HOLD = (
    "import sys, time; from pathlib import Path; from mlpipe.registry.aliases import registry_lock\n"
    'with registry_lock(Path(sys.argv[1]), sys.argv[2], "a run\'s gate promoting version 5"):\n'
    "    print('held', flush=True); time.sleep(float(sys.argv[3]))"
)


def hold(root: Path, name: str, seconds: float) -> subprocess.Popen:
    """Another process holding model `name`'s registry lock for `seconds` (returns once it holds it)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root), name, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_rollback_refuses_within_its_bound_naming_the_gate_that_holds_the_lock(tmp_path):
    holder = hold(tmp_path, "flights-late", 60)
    try:
        t0 = time.monotonic()
        with pytest.raises(LockBusy) as refused:
            with registry_lock(tmp_path, "flights-late", "`mlpipe rollback`", wait_s=0.6):
                pytest.fail("moved while another process held the registry lock")
        waited = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait(timeout=10)
    message = str(refused.value)
    assert "\n" not in message and 0.6 <= waited < 3
    assert f"(pid {holder.pid}: a run's gate promoting version 5)" in message
    assert (
        message.startswith("model flights-late: still busy after 0.6s")
        and "try again when it ends" in message
    )
    with registry_lock(tmp_path, "flights-late", "`mlpipe rollback`", wait_s=0):
        pass  # the kernel freed the killed holder's lock


def test_a_waiting_move_goes_through_once_the_holder_ends(tmp_path):
    holder = hold(tmp_path, "flights-late", 1.0)
    t0 = time.monotonic()
    with registry_lock(tmp_path, "flights-late", "`mlpipe promote` of version 4", wait_s=20):
        waited = time.monotonic() - t0
    holder.wait(timeout=10)
    assert 0.8 <= waited < 20, "granted while the holder still held it (it holds 1 s after saying so)"
    assert registry_lock_path(tmp_path, "flights-late").read_text().endswith("`mlpipe promote` of version 4")


def test_two_models_never_wait_on_each_other_and_odd_names_make_one_file(tmp_path):
    holder = hold(tmp_path, "a/b c", 60)
    try:
        with registry_lock(tmp_path, "other-model", "`mlpipe rollback`", wait_s=0):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert registry_lock_path(tmp_path, "a/b c") == tmp_path / ".mlpipe" / "registry-a_b_c.lock"
    names = sorted(p.name for p in (tmp_path / ".mlpipe").iterdir())
    assert names == ["registry-a_b_c.lock", "registry-other-model.lock"]
