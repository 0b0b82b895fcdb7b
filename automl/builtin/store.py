"""The core's own results store: any SQLAlchemy URL (SQLite by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl.hookspecs import hookimpl

if TYPE_CHECKING:
    from automl.store import Store

STORE_URLS = "any SQLAlchemy URL (sqlite default)"


@hookimpl(trylast=True)
def automl_open_store(url: str) -> Store:
    from automl.store import Store  # SQLAlchemy only when a store is opened, not when the plugins are loaded

    return Store(url)
