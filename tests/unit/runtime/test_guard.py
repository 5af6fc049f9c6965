"""Nothing left behind: a guarded server (and what it forked) ends with the process that started it,
however that one ends; signals unwind as Stopped; the flow runs of a dead process are recognised."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from mlpipe.runtime.guard import (
    EXIT_PARENT_GONE,
    Interrupted,
    Stopped,
    group_alive,
    group_descendants,
    group_running,
    guarded_popen,
    helper_command,
    interrupt_threads,
    orphaned_runs,
    owner_pid,
    owner_tags,
    stop_on_signals,
    stop_own_children,
)
from mlpipe.runtime.shell import pid_alive, stop_process_group

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")

# A "server" that forks a worker of its own, then both sleep; it prints both pids.
SERVER = (
    "import os, subprocess, sys, time\n"
    "w = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "print(os.getpid(), w.pid, flush=True); time.sleep(600)"
)
# A parent that starts the server under the guard (from a thread of its own if asked), then prints the
# pids of the server, its worker and the watchdog, and sleeps until killed.
PARENT = (
    "import json, subprocess, sys, threading, time\n"
    "from mlpipe.runtime.guard import guarded_popen\n"
    "def start():\n"
    "    global proc\n"
    "    proc = guarded_popen([sys.executable, '-c', sys.argv[1]], cwd='.', env=None,\n"
    "                         stdout=subprocess.PIPE, new_session=sys.argv[2] == 'session')\n"
    "if sys.argv[3] == 'thread':\n"
    "    t = threading.Thread(target=start); t.start(); t.join()\n"
    "else:\n"
    "    start()\n"
    "server, worker = map(int, proc.stdout.readline().split())\n"
    "print(json.dumps([server, worker, proc.watchdog.pid]), flush=True); time.sleep(600)"
)


def _parent(new_session: str = "session", thread: str = "main") -> tuple[subprocess.Popen, list[int]]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, SERVER, new_session, thread], stdout=subprocess.PIPE, text=True
    )
    import json

    return parent, json.loads(parent.stdout.readline())


def _gone_within(pids: list[int], timeout_s: float = 15) -> list[int]:
    """The pids still alive (not zombies) after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    alive = pids
    while time.monotonic() < deadline:
        alive = [p for p in pids if pid_alive(p) and not _zombie(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


@linux_only
@pytest.mark.parametrize("new_session", ["session", "group"])
def test_server_and_its_worker_end_when_their_parent_is_killed(new_session):
    parent, (server, worker, watchdog) = _parent(new_session)
    assert os.getpgid(server) == server and os.getpgid(worker) == server  # a group of their own
    assert (os.getsid(server) == server) == (new_session == "session")
    parent.kill()
    parent.wait(timeout=10)
    assert _gone_within([server, worker, watchdog]) == []


@linux_only
def test_the_parent_death_signal_alone_stops_the_server():
    parent, (server, worker, watchdog) = _parent()
    os.kill(watchdog, signal.SIGKILL)  # no watchdog: the kernel's signal is all that is left
    parent.kill()
    parent.wait(timeout=10)
    assert _gone_within([server]) == []
    os.kill(worker, signal.SIGKILL)  # the death signal reaches the direct child only: why the watchdog


@linux_only
def test_a_server_started_off_the_main_thread_is_guarded_by_the_watchdog_alone():
    parent, (server, worker, watchdog) = _parent(thread="thread")
    with open(f"/proc/{server}/cmdline", "rb") as f:
        assert b"guard.py" not in f.read()  # never armed: it would fire when that thread ended
    time.sleep(0.5)
    assert pid_alive(server), "the thread that started it ended; the server lives on"
    parent.kill()
    parent.wait(timeout=10)
    assert _gone_within([server, worker, watchdog]) == []


def test_stop_process_group_stops_the_server_its_worker_and_the_watchdog():
    proc = guarded_popen([sys.executable, "-c", SERVER], cwd=".", env=None, stdout=subprocess.PIPE)
    server, worker = map(int, proc.stdout.readline().split())
    assert proc.args == [sys.executable, "-c", SERVER] and server == proc.pid
    stop_process_group(proc, grace_s=5)
    proc.stdout.close()
    assert proc.returncode is not None and proc.watchdog.returncode is not None
    assert _gone_within([worker]) == []


def test_the_exec_helper_refuses_when_its_parent_is_already_gone():
    # parent pid 1 is not this helper's parent: as if the real one had died before the signal was armed
    done = subprocess.run(helper_command("exec", "1", "--", "true"), timeout=30)
    assert done.returncode == EXIT_PARENT_GONE


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals: main thread")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_unwinds_as_stopped_and_the_handler_is_restored(signum):
    before = signal.getsignal(signum)
    cleaned = []
    with pytest.raises(Stopped) as caught:
        with stop_on_signals():
            try:
                os.kill(os.getpid(), signum)
                time.sleep(5)  # interrupted at once
            finally:
                cleaned.append(True)
    assert cleaned == [True], "finally blocks run on the way out"
    assert caught.value.signum == signum and caught.value.exit_code == 128 + signum
    assert str(caught.value) == f"stopped by {signal.Signals(signum).name}"
    assert isinstance(caught.value, KeyboardInterrupt)  # Prefect marks a flow it interrupts Crashed
    assert signal.getsignal(signum) is before


# A command whose cleanup is slow: the first signal unwinds into it, a second one must end the process
# at once, with the child it started (a plain subprocess of its own process group).
SLOW_CLEANUP = (
    "import os, subprocess, sys, time\n"
    "from mlpipe.runtime.guard import stop_on_signals\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "with stop_on_signals():\n"
    "    try:\n"
    "        print(child.pid, flush=True); time.sleep(600)\n"
    "    finally:\n"
    "        print('cleaning', flush=True); time.sleep(600)\n"
)


@linux_only
def test_a_second_signal_while_stopping_ends_the_process_and_its_children_at_once():
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLEANUP], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        child = int(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline().strip() == "cleaning"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 128 + signal.SIGINT
        assert "stopped at once by a second SIGINT" in proc.stderr.read()
        deadline = time.monotonic() + 5
        while pid_alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(child), "the child it started ends with it"
    finally:
        proc.kill()
        proc.wait()


def test_the_owner_of_a_run_is_read_back_from_its_tags_on_this_host_only():
    tags = owner_tags("build-1", 4242) + ["mlpipe"]
    assert owner_pid(tags, "build-1") == 4242
    assert owner_pid(tags, "build-2") is None
    assert owner_pid(["mlpipe"], "build-1") is None
    assert owner_pid(["mlpipe-host:build-1", "mlpipe-pid:x"], "build-1") is None


def test_orphaned_runs_are_those_of_this_host_whose_process_is_gone():
    alive = {100}.__contains__
    runs = [
        ("dead", owner_tags("here", 200)),
        ("live", owner_tags("here", 100)),
        ("elsewhere", owner_tags("there", 200)),
        ("untagged", ["mlpipe"]),
        ("two pids", [*owner_tags("here", 200), "mlpipe-pid:300"]),
    ]
    assert orphaned_runs(runs, "here", alive) == [("dead", 200)]
    assert orphaned_runs([], "here", alive) == []


# A "server" that exits on SIGTERM at once, while its worker takes its time (1 s) or ignores SIGTERM.
LEADER_FIRST = (
    "import os, signal, subprocess, sys, time\n"
    "slow = 'import signal, time; signal.signal(signal.SIGTERM, lambda *a: (time.sleep(1), exit(0)));"
    " print(1, flush=True); time.sleep(600)'\n"
    "deaf = 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    " print(1, flush=True); time.sleep(600)'\n"
    "ws = [subprocess.Popen([sys.executable, '-c', c], stdout=subprocess.PIPE) for c in (slow, deaf)]\n"
    "[w.stdout.readline() for w in ws]\n"
    "print(*(w.pid for w in ws), flush=True); time.sleep(600)"
)


def test_stop_process_group_returns_only_once_the_workers_that_outlive_the_server_are_gone():
    proc = guarded_popen([sys.executable, "-c", LEADER_FIRST], cwd=".", env=None, stdout=subprocess.PIPE)
    slow, deaf = map(int, proc.stdout.readline().split())
    stop_process_group(proc, grace_s=3)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGTERM  # the server itself went at once
    assert [p for p in (slow, deaf) if pid_alive(p) and not _zombie(p)] == []  # no grace period here


@linux_only
def test_a_group_of_one_unreaped_zombie_is_alive_but_not_running():
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    deadline = time.monotonic() + 30
    while not _zombie(proc.pid) and time.monotonic() < deadline:  # exited, not yet reaped (no poll)
        time.sleep(0.05)
    assert _zombie(proc.pid)
    assert group_alive(proc.pid) and not group_running(proc.pid)
    proc.wait(timeout=10)
    assert not group_alive(proc.pid) and not group_running(proc.pid)


def test_the_children_to_stop_are_the_running_descendants_in_the_process_group():
    # pid: (ppid, pgrp, state); 10 is us in group 10
    table = {
        10: (1, 10, "S"),
        11: (10, 10, "S"),  # git, started by us
        12: (11, 10, "R"),  # what git started
        13: (10, 13, "S"),  # a guarded server, in a session of its own
        14: (13, 13, "S"),  # its worker
        15: (10, 10, "Z"),  # exited, not reaped: nothing to stop
        20: (1, 10, "S"),  # `| tee`: same group, not ours
    }
    assert group_descendants(10, 10, table) == [11, 12]
    assert group_descendants(11, 10, table) == [12]
    assert group_descendants(99, 10, table) == []


@linux_only
def test_stop_own_children_ends_the_plain_subprocesses_not_the_guarded_server():
    plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    server = guarded_popen([sys.executable, "-c", "import time; time.sleep(60)"], cwd=".", env=None)
    try:
        assert plain.pid in stop_own_children(grace_s=5)
        assert plain.wait(timeout=10) == -signal.SIGTERM
        assert server.poll() is None, "the server is its owner's to stop"
    finally:
        stop_process_group(server, grace_s=5)


def test_an_interrupted_thread_unwinds_from_pure_python():
    caught = []

    def spin():
        try:
            while True:
                pass
        except Interrupted:
            caught.append(True)

    thread = threading.Thread(target=spin)
    thread.start()
    time.sleep(0.1)
    assert interrupt_threads([thread.ident, threading.get_ident(), None]) == 1  # not this thread
    thread.join(timeout=10)
    assert caught == [True] and not thread.is_alive()
