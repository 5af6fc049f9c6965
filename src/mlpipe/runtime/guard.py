"""Nothing left behind: the servers mlpipe starts end with it however it ends, and what a process that
died mid-run leaves in Prefect is recognised by the next run.

`guarded_popen` starts a server
- in a session (or process group) of its own, so a terminal's Ctrl-C reaches mlpipe alone, which then
  stops the server in order (`stop_on_signals` turns SIGTERM, SIGINT and SIGHUP into an unwinding);
- with the kernel's parent-death signal armed (Linux `prctl(PR_SET_PDEATHSIG)`, kept across exec), so the
  server gets SIGTERM the moment mlpipe dies, SIGKILL and the OOM killer included;
- beside a watchdog process that SIGTERMs, then SIGKILLs, the server's whole process group once mlpipe is
  gone: the death signal reaches only the direct child, and a server may have forked workers.

This file is also the script of both helpers (`python -I -S guard.py exec|watch ...`): stdlib only, and
nothing happens at import.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NoReturn

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_EVERY_S = 0.2  # how soon the watchdog notices that its parent is gone
EXIT_PARENT_GONE = 70  # the exec helper found its parent dead before it could arm the signal
HOST_TAG, PID_TAG = "mlpipe-host:", "mlpipe-pid:"  # Prefect tags naming the process that runs a flow


class Stopped(KeyboardInterrupt):
    """A termination signal raised in the main thread the way Ctrl-C raises KeyboardInterrupt: the code in
    between unwinds (its finally blocks stop what it started) and Prefect marks a running flow Crashed."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"stopped by {signal.Signals(self.signum).name}"

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # what a shell reports for a process ended by that signal


@contextmanager
def stop_on_signals(
    signums: Sequence[int] = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP),
) -> Iterator[None]:
    """Within the block, each of `signums` raises Stopped in the main thread (elsewhere this does nothing:
    Python runs signal handlers in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    stopping: list[int] = []

    def raise_stopped(signum, frame):
        if stopping:  # a second signal while the first unwinds: the user wants out now
            end_at_once(signum)
        stopping.append(signum)
        raise Stopped(signum)

    previous = {s: signal.signal(s, raise_stopped) for s in signums}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


def end_at_once(signum: int) -> NoReturn:
    """End this process now, as a second Ctrl-C asks: one line, then exit with the signal's code. What it
    started ends too (guarded servers on their parent's death, the rest with the process group it leads);
    the next run completes what this one left (runtime.run_marker)."""
    name = signal.Signals(signum).name
    with suppress(OSError):
        os.write(2, f"mlpipe: stopped at once by a second {name}; the next run completes this one\n".encode())
    with suppress(OSError):
        for pid in group_descendants(os.getpid(), os.getpgrp(), _proc_table()):
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    os._exit(128 + signum)


class Interrupted(KeyboardInterrupt):
    """Raised in a worker thread by `interrupt_threads` when the run it works for stops: the thread unwinds as
    the main thread does on a signal (a Prefect task run in it ends Crashed)."""


def interrupt_threads(idents: Iterable[int | None]) -> int:
    """Raise Interrupted in each live thread of `idents` but this one, at its next Python instruction (a
    thread waiting in a system call meets it once the call returns); returns how many were told."""
    import ctypes

    live = {t.ident for t in threading.enumerate()} - {threading.get_ident()}
    told = 0
    for ident in set(idents) & live:
        exc = ctypes.py_object(Interrupted)
        told += ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), exc) == 1
    return told


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgrp, state) of every process /proc shows (Linux); {} elsewhere."""
    table = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return table
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:  # after the command's closing parenthesis: state, ppid, pgrp, ...
                state, ppid, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            except (OSError, ValueError):
                continue  # gone meanwhile
            table[int(entry.name)] = (int(ppid), int(pgrp), state)
    return table


def group_descendants(pid: int, pgid: int, table: dict[int, tuple[int, int, str]]) -> list[int]:
    """The running processes below `pid` (children, theirs, ...) that are in process group `pgid`: what it
    started with plain subprocess calls, not the servers it started in sessions of their own."""
    children: dict[int, list[int]] = {}
    for child, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(child)
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        todo += children.get(child, [])
        _, pgrp, state = table[child]
        if pgrp == pgid and state != "Z":
            found.append(child)
    return sorted(found)


def stop_own_children(grace_s: float, every_s: float = 0.05) -> list[int]:
    """SIGTERM the processes this one started in its own process group (git, DVC, the probe: plain
    subprocess calls of worker threads, which wait on them), SIGKILL those left after `grace_s`; returns
    their pids. The guarded servers, in sessions of their own, are left to their owners."""
    pids = group_descendants(os.getpid(), os.getpgrp(), _proc_table())
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + (grace_s if signum == signal.SIGTERM else KILL_WAIT_S)
        while time.monotonic() < deadline:
            table = _proc_table()
            if not any(pid in table and table[pid][2] != "Z" for pid in pids):
                return pids
            time.sleep(every_s)
    return pids


def set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send `signum` to this process when the thread that forked it ends (the main
    thread: the process); False where there is no such call (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0


def group_alive(pgid: int) -> bool:
    """True while some process of group `pgid` exists (a zombie counts until it is reaped)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_running(pgid: int) -> bool:
    """True while some process of group `pgid` still runs. Unlike `group_alive`, a zombie does not count
    on Linux: one whose parent died waits for whoever adopted it (a container's init may never reap it),
    and it holds nothing but its pid. Elsewhere the same as `group_alive`."""
    if not group_alive(pgid):
        return False
    if not sys.platform.startswith("linux") or not Path("/proc").is_dir():
        return True
    return any(pgrp == pgid and state != "Z" for _, pgrp, state in _proc_table().values())


KILL_WAIT_S = 10.0  # how long a SIGKILLed process may take to go (it leaves once the kernel schedules it)


def stop_group(
    pgid: int, grace_s: float, every_s: float = 0.1, reap: Callable[[], object] | None = None
) -> None:
    """SIGTERM every process of group `pgid`; SIGKILL what is left after `grace_s`. Returns once no member
    runs, however long its members outlive their leader (and, after the SIGKILL, at most `KILL_WAIT_S`
    later: the kernel's delivery takes a scheduling slot, which a loaded machine can delay). `reap` (the
    leader's Popen.poll, for its parent) collects the leader once it exits."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if _wait_group(pgid, grace_s, every_s, reap):
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _wait_group(pgid, KILL_WAIT_S, every_s, reap)


def _wait_group(pgid: int, within_s: float, every_s: float, reap: Callable[[], object] | None) -> bool:
    """True once no member of group `pgid` runs; False if some still does after `within_s`."""
    deadline = time.monotonic() + within_s
    while True:
        if reap is not None:
            reap()
        if not group_running(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every_s)


def watch(parent_pid: int, pgid: int, grace_s: float, every_s: float = WATCH_EVERY_S) -> None:
    """The watchdog: return once group `pgid` is gone; stop it first if `parent_pid` is no longer this
    process's parent (it died: the kernel gave this orphan to another). Runs as long as both live."""
    while group_alive(pgid):
        if os.getppid() != parent_pid:
            stop_group(pgid, grace_s)
            return
        time.sleep(every_s)


def exec_with_parent_death_signal(parent_pid: int, cmd: Sequence[str]) -> None:
    """The exec helper: arm SIGTERM on parent death, then become `cmd` (same pid, the signal stays)."""
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed: nobody to serve
        os._exit(EXIT_PARENT_GONE)
    try:
        os.execvp(cmd[0], list(cmd))
    except OSError as exc:
        print(f"guard: cannot start {cmd[0]}: {exc}", file=sys.stderr, flush=True)
        os._exit(127)


def helper_command(*args: str) -> list[str]:
    """This file run as a script by this interpreter, isolated (-I) and without site-packages (-S)."""
    return [sys.executable, "-I", "-S", str(Path(__file__).resolve()), *args]


def guarded_popen(
    cmd: Sequence[str],
    *,
    cwd: Path | str,
    env: dict[str, str],
    stdout=None,
    stderr=None,
    new_session: bool = True,
    grace_s: float = 10.0,
) -> subprocess.Popen:
    """`cmd` as a process that ends with this one (see the module's docstring): in a session of its own,
    or with `new_session=False` in a process group of its own within this session. `proc.args` is `cmd`;
    `proc.watchdog` is its watchdog. Stop both with `runtime.shell.stop_process_group`."""
    parent = os.getpid()
    argv = list(cmd)
    # The death signal follows the *thread* that forks: only the main thread lives as long as the process.
    # Off it, or off Linux, the watchdog alone stands guard.
    if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        argv = helper_command("exec", str(parent), "--", *cmd)
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=new_session,
        process_group=None if new_session else 0,
    )
    proc.args = list(cmd)
    proc.watchdog = subprocess.Popen(
        helper_command("watch", str(parent), str(proc.pid), str(grace_s)),
        cwd="/",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a signal to this process's group does not end the guard with it
    )
    return proc


def owner_tags(host: str, pid: int) -> list[str]:
    """The Prefect tags naming the process that starts a flow run (its task runs and subflows get them)."""
    return [f"{HOST_TAG}{host}", f"{PID_TAG}{pid}"]


def owner_pid(tags: Iterable[str], host: str) -> int | None:
    """The pid `owner_tags` recorded on `host`, else None (another host's run, or not started by mlpipe)."""
    tags = list(tags)
    if f"{HOST_TAG}{host}" not in tags:
        return None
    pids = [t[len(PID_TAG) :] for t in tags if t.startswith(PID_TAG)]
    return int(pids[0]) if len(pids) == 1 and pids[0].isdigit() else None


def orphaned_runs(
    runs: Iterable[tuple[Hashable, Iterable[str]]], host: str, alive: Callable[[int], bool]
) -> list[tuple[Hashable, int]]:
    """(id, pid) of the runs, given as (id, tags) of unfinished runs, whose process on `host` is gone."""
    found = []
    for run_id, tags in runs:
        pid = owner_pid(tags, host)
        if pid is not None and not alive(pid):
            found.append((run_id, pid))
    return found


def main(argv: Sequence[str]) -> int:
    """`exec PARENT_PID -- CMD...` or `watch PARENT_PID PGID GRACE_S`."""
    if argv[:1] == ["exec"] and len(argv) > 3 and argv[2] == "--":
        exec_with_parent_death_signal(int(argv[1]), argv[3:])
    if argv[:1] == ["watch"] and len(argv) == 4:
        for s in (signal.SIGINT, signal.SIGHUP):  # a terminal's signals are for mlpipe; SIGTERM ends us
            signal.signal(s, signal.SIG_IGN)
        watch(int(argv[1]), int(argv[2]), float(argv[3]))
        return 0
    print(f"usage: guard.py exec PARENT_PID -- CMD... | watch PARENT_PID PGID GRACE_S (got {argv})")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
