"""The local Ray a driver started for a run, recorded in the run directory so that the next driver of the run can
stop what a killed one left running.

A driver killed with ``kill -9`` leaves the Ray it started behind for a while (its agents outlive it by 30-90 s,
a worker in a long step longer). Each start of a local Ray writes ``RUN_DIR/ray-session.json``: the driver's pid,
its start time and Ray's session directory (unique to that start). The next driver of the run (it holds the run's
lock, so the recorded one is dead) stops, on this machine, the processes of the same user that still name that
session directory in their command line or hold a file open in it: Ray's processes of that start, nothing else.
Linux only (``/proc``); elsewhere nothing is cleaned. A Ray joined with ``--address`` is never recorded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import time
from pathlib import Path

__all__ = ["SESSION_FILE", "clean_orphans", "record_session", "session_processes"]

SESSION_FILE = "ray-session.json"

log = logging.getLogger("automl")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat): tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def record_session(run_dir: Path, session_dir: str) -> None:
    """Note that this process started the local Ray of ``session_dir`` for the run in ``run_dir``."""
    text = json.dumps({"driver_pid": os.getpid(), "driver_started": _start_time(os.getpid()),
                       "session_dir": session_dir})
    with contextlib.suppress(OSError):
        (run_dir / SESSION_FILE).write_text(text)


def session_processes(session_dir: str) -> list[int]:
    """Processes of this user, this one aside, that name ``session_dir`` in their command line or hold a file in it."""
    root = Path("/proc")
    if not session_dir or not root.is_dir():
        return []
    # The directory itself, not a longer name it begins (session_..._2138 is no part of session_..._21381).
    named = re.compile(re.escape(session_dir) + r"(?=$|[\s/'\"])")
    found = []
    for entry in root.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            hit = named.search(cmdline) is not None
            if not hit:
                for fd in (entry / "fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd).startswith(session_dir + os.sep):
                            hit = True
                            break
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if hit:
            found.append(int(entry.name))
    return found


def clean_orphans(run_dir: Path, grace: float = 3.0) -> int:
    """Stop what the run's previous local Ray left running, when the driver that started it is dead.

    Call with the run's lock held. Returns how many processes were stopped (SIGTERM, then SIGKILL after ``grace``
    seconds for those still there).
    """
    try:
        recorded = json.loads((run_dir / SESSION_FILE).read_text())
        pid, started, session_dir = int(recorded["driver_pid"]), recorded["driver_started"], str(recorded["session_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    if pid == os.getpid() or (_start_time(pid) is not None and _start_time(pid) == started):
        return 0  # the driver that started it still lives (or is this one): its Ray is not an orphan
    left = session_processes(session_dir)
    for victim in left:
        with contextlib.suppress(OSError):
            os.kill(victim, signal.SIGTERM)
    until = time.monotonic() + grace
    while time.monotonic() < until and any(_start_time(p) is not None for p in left):
        time.sleep(0.1)
    for victim in left:
        if _start_time(victim) is not None:
            with contextlib.suppress(OSError):
                os.kill(victim, signal.SIGKILL)
    if left:
        log.warning("automl: stopped %d process(es) of the Ray a killed driver of this run left running (%s)",
                    len(left), session_dir)
    with contextlib.suppress(OSError):
        (run_dir / SESSION_FILE).unlink()
    return len(left)
