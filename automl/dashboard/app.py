"""The dashboard's Starlette application: one page (plain HTML and a script) and the JSON it polls.

Routes:

- ``/``, ``/run/{key}``, ``/compare?runs=a,b``: the same static page; its script reads the path and draws
  the runs list, one run, or a comparison, every element filled with ``textContent`` (a config value
  ``<script>`` is text, never markup).
- ``/api/runs``: every run shown, with status, progress and best value.
- ``/api/runs/{key}?since=STAMP``: one run's trials, front, failures and figures; ``{"unchanged": true}``
  when its rows are what ``STAMP`` says (the page polls this every two seconds).
- ``/api/runs/{key}/importance``: parameter importance (a surrogate fit, asked for less often).
- ``/api/compare?runs=a,b``: runs side by side.
- ``/static/``: the script, the style sheet and plotly.js (from the installed plotly: nothing from a CDN).

A run deleted while shown answers 410 with the reason, which the page shows. With a token (needed on
a non-loopback host), every request must carry it: ``Authorization: Bearer T``, ``X-Automl-Token: T``
or ``?token=T``; otherwise 401.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import threading
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from automl.dashboard.data import Catalog, RunGone, RunRef, comparison, run_detail, run_importance, run_summary
from automl.errors import AutoMLError
from automl.figures import ReportData
from automl.store import clean

__all__ = ["LOOPBACK_HOSTS", "create_app"]

log = logging.getLogger(__name__)

#: Host headers a loopback-bound dashboard answers (a page elsewhere cannot reach it by DNS rebinding).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


COOKIE = "automl_dashboard_token"


class TokenMiddleware:
    """Refuses (401) every request that does not carry the dashboard's token.

    A page opened with ``?token=T`` gets it as an HttpOnly, same-site cookie too, so the style sheet and
    scripts it loads (which carry no query) are let through.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if not self._allowed(request):
            response = Response("401: this dashboard needs its token (?token=T or the header X-Automl-Token: T)\n",
                                status_code=401, media_type="text/plain")
            await response(scope, receive, send)
            return
        if not self._matches(request.query_params.get("token", "")):
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{COOKIE}={self.token.decode()}; HttpOnly; SameSite=Strict; Path=/"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _matches(self, given: str) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.token)

    def _allowed(self, request: Request) -> bool:
        bearer = request.headers.get("authorization", "")
        return any(self._matches(g) for g in (
            request.query_params.get("token", ""), request.headers.get("x-automl-token", ""),
            bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else "", request.cookies.get(COOKIE, "")))


class Views:
    """What the endpoints answer, cached per run until its rows change (figures over 10,000 trials take a while)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._cache: dict[tuple[str, str], tuple[str, Any]] = {}
        self._lock = threading.Lock()

    def ref(self, key: str) -> RunRef:
        ref = self.catalog.get(key)
        if ref is None:
            raise LookupError(f"no run {key!r} here; the runs are {', '.join(r.key for r in self.catalog.refs())}")
        return ref

    def _cached(self, what: str, ref: RunRef, make: Callable[[ReportData], Any]) -> tuple[str, Any]:
        """``make(data)`` for the run as it is now, made again only after its stamp changed."""
        run = ref.run()  # raises RunGone first
        stamp = ref.store.stamp(ref.run_id)
        with self._lock:
            hit = self._cache.get((what, ref.key))
        if hit is not None and hit[0] == stamp:
            return hit
        value = make(ReportData.read(run))
        with self._lock:
            self._cache[(what, ref.key)] = (stamp, value)
        return stamp, value

    def runs(self) -> list[dict[str, Any]]:
        out = []
        for ref in self.catalog.refs():
            try:
                out.append(self._cached("summary", ref, functools.partial(run_summary, ref))[1])
            except RunGone as exc:
                out.append({"key": ref.key, "gone": str(exc)})
        return out

    def detail(self, key: str, since: str | None) -> dict[str, Any]:
        ref = self.ref(key)
        ref.run()  # a deleted run is said so, not answered "unchanged"
        stamp = ref.store.stamp(ref.run_id)
        if since is not None and since == stamp:
            return {"stamp": stamp, "unchanged": True}
        stamp, value = self._cached("detail", ref, lambda data: run_detail(ref, data, figure_json))
        return {"stamp": stamp, **value}

    def importance(self, key: str) -> dict[str, Any]:
        stamp, value = self._cached("importance", self.ref(key), lambda data: run_importance(data, figure_json))
        return {"stamp": stamp, **value}

    def compare(self, keys: Sequence[str]) -> dict[str, Any]:
        if len(keys) < 2:
            raise LookupError("compare needs two or more runs: /compare?runs=0,1")
        refs = [self.ref(k) for k in keys]
        return comparison([(ref, ReportData.read(ref.run())) for ref in refs], figure_json)


def figure_json(fig: Any) -> Any:
    """A plotly figure as the page's ``Plotly.react`` takes it (``{"data", "layout"}``), kept where the user zoomed."""
    out = json.loads(fig.to_json())
    out.setdefault("layout", {})["uirevision"] = "keep"
    return out


def _json(payload: Any, status: int = 200) -> Response:
    # Non-finite numbers become null (JSON has none); anything not JSON is shown as its text, never evaluated.
    body = json.dumps(clean(payload), default=str, allow_nan=False, ensure_ascii=False)
    return Response(body, status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


def _answer(make: Callable[[], Any]) -> Response:
    """The endpoint's JSON, or its failure as JSON the page shows: 404 unknown, 410 deleted, 503 store trouble."""
    try:
        return _json(make())
    except LookupError as exc:
        return _json({"error": str(exc)}, 404)
    except RunGone as exc:
        return _json({"gone": str(exc)}, 410)
    except AutoMLError as exc:
        return _json({"error": str(exc)}, 503)
    except Exception as exc:  # noqa: BLE001 - the server goes on serving the other runs; the page says what broke
        log.exception("dashboard request failed")
        return _json({"error": f"{type(exc).__name__}: {exc}"}, 500)


def _page() -> str:
    return resources.files("automl.dashboard").joinpath("static", "page.html").read_text(encoding="utf-8")


def create_app(catalog: Catalog, *, token: str | None = None, allowed_hosts: Sequence[str] | None = LOOPBACK_HOSTS) -> Starlette:
    """The dashboard over ``catalog``.

    Args:
        catalog: The runs shown.
        token: When given, every request must carry it (else 401).
        allowed_hosts: ``Host`` headers answered (default: loopback names); None answers any.
    """
    from plotly.offline import get_plotlyjs

    views = Views(catalog)
    page = _page()
    plotly_js = get_plotlyjs()

    def html(_request: Request) -> Response:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    def plotly(_request: Request) -> Response:
        return Response(plotly_js, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})

    routes = [
        Route("/", html), Route("/run/{key}", html), Route("/compare", html),
        Route("/api/runs", lambda r: _answer(views.runs)),
        Route("/api/runs/{key}", lambda r: _answer(lambda: views.detail(r.path_params["key"],
                                                                         r.query_params.get("since")))),
        Route("/api/runs/{key}/importance", lambda r: _answer(lambda: views.importance(r.path_params["key"]))),
        Route("/api/compare", lambda r: _answer(lambda: views.compare(
            [k for k in r.query_params.get("runs", "").split(",") if k]))),
        Route("/static/plotly.min.js", plotly),
        Route("/favicon.ico", lambda r: Response(status_code=204)),  # browsers ask; no icon, no 404 in the console
        Mount("/static", StaticFiles(packages=[("automl.dashboard", "static")]), name="static"),
    ]
    middleware = []
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    if token:
        middleware.append(Middleware(TokenMiddleware, token=token))
    app = Starlette(routes=routes, middleware=middleware)
    app.state.views = views
    return app
