"""Serving the dashboard: uvicorn on a socket bound here, so a port in use is one clear line.

:func:`bind` checks the host (a non-loopback one needs a token) and binds the socket; :func:`serve`
runs uvicorn on it until Ctrl-C (``automl dashboard``); :class:`BackgroundDashboard` runs it on a
thread beside a search (``automl search --dashboard``) and stops it when the search ends.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl.dashboard import DASHBOARD_EXTRA
from automl.errors import AutoMLError

__all__ = ["DEFAULT_PORT", "BackgroundDashboard", "Bound", "bind", "check_installed", "serve"]

DEFAULT_PORT = 8750
#: What a token may hold: it travels in URLs, headers and a cookie unquoted.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{16,}")


def check_installed() -> None:
    """Raise the one-line install hint when Starlette or uvicorn is missing."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise AutoMLError(f"automl dashboard needs {exc.name or 'starlette and uvicorn'}: {DASHBOARD_EXTRA}") from exc


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Bound:
    """A listening socket and the address the dashboard answers on."""

    sock: socket.socket
    host: str
    port: int
    token: str | None

    @property
    def url(self) -> str:
        """The page's address (with the token, when there is one)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")


def bind(host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None) -> Bound:
    """Check ``host`` and ``token`` and bind the socket (``port`` 0 picks a free one).

    Raises:
        AutoMLError: A non-loopback host without a token, a malformed token, a port in use or not bindable.
    """
    if token is not None and not TOKEN_PATTERN.fullmatch(token):
        raise AutoMLError("--token must be 16 or more letters, digits or ._~- (e.g. the output of "
                          "python -c 'import secrets; print(secrets.token_urlsafe())')")
    if not is_loopback(host) and not token:
        raise AutoMLError(f"refusing to serve on {host}, which other machines can reach, without --token: "
                          "the dashboard shows every config and error of the runs; pass --token T, or keep "
                          "the default --host 127.0.0.1")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AutoMLError(f"cannot serve on host {host!r}: {exc.strerror}") from exc
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise AutoMLError(f"cannot serve on {host}:{port}: {exc.strerror or exc} "
                          "(another program uses that port? pass --port N, or --port 0 for a free one)") from exc
    return Bound(sock, host, int(sock.getsockname()[1]), token)


def _server(bound: Bound, catalog: Any) -> Any:
    import uvicorn

    from automl.dashboard.app import LOOPBACK_HOSTS, create_app

    app = create_app(catalog, token=bound.token, allowed_hosts=LOOPBACK_HOSTS if is_loopback(bound.host) else None)
    # uvicorn's own log stays quiet: the command prints the address once; errors are answered as JSON.
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


def serve(bound: Bound, catalog: Any) -> None:
    """Serve ``catalog`` on ``bound`` until Ctrl-C (uvicorn handles the signal and stops cleanly)."""
    server = _server(bound, catalog)
    try:
        server.run(sockets=[bound.sock])
    finally:
        bound.sock.close()


class BackgroundDashboard:
    """The dashboard on a daemon thread (beside a search); :meth:`stop` ends it.

    Args:
        bound: The socket from :func:`bind`.
        pending: Run directories to show once they hold a run (the search's ``--out``).
        run_dirs: Run directories that already hold one.
    """

    def __init__(self, bound: Bound, *, pending: Sequence[str | Path] = (), run_dirs: Sequence[str | Path] = ()) -> None:
        from automl.dashboard.data import Catalog

        self.bound = bound
        self.catalog = Catalog(run_dirs=run_dirs, pending=pending)
        self.server = _server(bound, self.catalog)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [bound.sock]},
                                       name="automl-dashboard", daemon=True)

    def start(self) -> BackgroundDashboard:
        """Start serving (once: starting a started dashboard does nothing)."""
        if self.thread.ident is None:
            self.thread.start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.bound.sock.close()
        self.catalog.close()

    def __enter__(self) -> BackgroundDashboard:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
