"""``automl dashboard``: a live view of searches in the browser, read-only over their stores.

- :mod:`automl.dashboard.data`: the runs shown (run directories and whole stores), opened read-only,
  and what the pages are sent about each (typed records turned into JSON).
- :mod:`automl.dashboard.app`: the Starlette application: the pages, their JSON endpoints, the token check.
- :mod:`automl.dashboard.server`: uvicorn on a socket bound here (loopback by default), in the
  foreground (``automl dashboard``) or on a thread beside a search (``automl search --dashboard``).
- ``static/``: the page's script and style sheet; plotly.js is served from the installed plotly package.

Starlette and uvicorn are the optional extra ``automl[dashboard]``; nothing in the core imports this package.
"""

from __future__ import annotations

__all__ = ["DASHBOARD_EXTRA"]

#: What to install when Starlette or uvicorn is missing.
DASHBOARD_EXTRA = "pip install 'automl[dashboard]'"
