"""One run directory, one live driver: the lock a search or resume holds on its run directory.

An advisory ``fcntl.flock`` on ``RUN_DIR/.automl.lock``, taken before the directory is checked or
written and held until the driver ends. The operating system releases it when the process dies,
however it dies (``kill -9`` included), so a killed driver never blocks the next ``resume``; the file
itself stays and names the last holder, for the message. A file opened by Python is not inherited by
the processes the driver starts (Ray's), so they never hold it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from automl.errors import AutoMLError

__all__ = ["LOCK_FILE", "RunLock", "RunLocked"]

LOCK_FILE = ".automl.lock"

try:
    import fcntl
except ImportError:  # not on a POSIX system: no lock (documented)
    fcntl = None  # type: ignore[assignment]


class RunLocked(AutoMLError):
    """Another live driver holds the run directory (exit code 2 in the CLI, like every refusal)."""


class RunLock:
    """The lock on a run directory; a context manager, or :meth:`acquire` / :meth:`release`.

    Args:
        run_dir: The run directory (created when missing).
        what: What this driver does there (``search``, ``resume``), written into the file for the next one.
    """

    def __init__(self, run_dir: str | Path, what: str = "search") -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.what = what
        self._file: IO[str] | None = None

    def acquire(self) -> RunLock:
        """Take the lock now or refuse.

        Raises:
            RunLocked: When another live process holds it (the message names its pid and command).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for as long as the lock is
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise RunLocked(
                    f"{str(self.path.parent)!r} is in use by a running automl driver ({holder}): one run directory, "
                    "one driver; wait for it to end (or stop it), then `automl resume` continues the run"
                ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, automl {self.what} since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        """Let the next driver in (closing the file releases the lock)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
