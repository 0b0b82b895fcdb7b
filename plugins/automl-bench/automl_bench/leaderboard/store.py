"""Reading the searcher benchmark store (:mod:`automl_bench.store`) without writing to it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from automl_bench.base import BenchmarkError
from automl_bench.store import environments, results

__all__ = ["open_results"]


def _present(conn: sa.Connection, table: sa.Table) -> list[sa.Column[Any]]:
    """The columns of ``table`` that the store has: an older store lacks columns added since, and
    reading must not add them (the runner's store does that when it next writes)."""
    have = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
    return [c for c in table.columns if c.name in have]


def open_results(url: str, suites: Sequence[str] = ()) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every result row (of ``suites`` when given), oldest first, and every environment record.

    A leaderboard only reads: a SQLite file that does not exist, or a database without the
    results table, is an error rather than a new empty store.

    Raises:
        BenchmarkError: When the URL is malformed, its driver is missing, the database cannot
            be opened or is not a benchmark store, or it holds no results.
    """
    if "://" not in url and Path(url).suffix in (".db", ".sqlite", ".sqlite3"):
        url = f"sqlite:///{url}"  # a plain path to a SQLite file
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise BenchmarkError(f"cannot open the results store {url!r}: the file {str(path)!r} does not exist "
                                 "(run automl bench first, or give the store's SQLAlchemy URL)")
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            if results.name not in tables:
                raise BenchmarkError(f"{url!r} is not a benchmark results store: it has no {results.name} table "
                                     f"(tables: {', '.join(sorted(tables)) or 'none'})")
            query = sa.select(*_present(conn, results)).order_by(results.c.id)
            if suites:
                query = query.where(results.c.suite.in_(list(suites)))
            rows = [dict(r) for r in conn.execute(query).mappings()]
            envs = ([dict(r) for r in conn.execute(
                sa.select(*_present(conn, environments)).order_by(environments.c.id)).mappings()]
                if environments.name in tables else [])
    except (SQLAlchemyError, ArgumentError, ImportError, ValueError) as exc:
        raise BenchmarkError(f"cannot open the results store {url!r}: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0]}") from exc
    finally:
        if "engine" in locals():
            engine.dispose()
    if not rows:
        which = f" of suites {', '.join(suites)}" if suites else ""
        raise BenchmarkError(f"the store {url!r} holds no benchmark results{which}: run automl bench first")
    return rows, envs
