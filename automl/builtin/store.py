"""The core's own results store: any SQLAlchemy URL (SQLite by default)."""

from __future__ import annotations

from automl.hookspecs import hookimpl
from automl.store import Store

STORE_URLS = "any SQLAlchemy URL (sqlite default)"


@hookimpl(trylast=True)
def automl_open_store(url: str) -> Store:
    return Store(url)
