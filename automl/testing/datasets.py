"""The data set conformance kit: reusable pytest checks every data set plugin should pass.

A data set is loaded here as the plan loads it (``DatasetSpec.load(options)``), with sockets
blocked, then checked and split as the engine checks and splits it.

What is checked (each a ``test_*`` method of :class:`DatasetConformance`):

* the registered :class:`~automl.plugin.DatasetSpec` is well formed: a description, a task of
  ``classification``, ``regression`` or None; its ``check`` accepts the kit's options and
  refuses :attr:`bad_options` with a ``ValueError``;
* ``load`` returns a :class:`~automl.plugin.Table`: a DataFrame of uniquely and string-named
  feature columns without the target, and a target Series of the same rows on the same index;
* the columns (and the row count) are the declared ones;
* the table fits its task: the engine's ``check_table`` accepts it, classification has at
  least two classes with enough rows each for a stratified split, regression a numeric
  target that varies; the engine's split works;
* two loads give the same table, and loading does not change the options;
* nothing is fetched from the network (sockets are blocked while it loads).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from automl.plugin import DatasetSpec

if TYPE_CHECKING:
    from automl.plugin import Table, Task

__all__ = ["DatasetConformance", "no_network"]


@contextlib.contextmanager
def no_network() -> Iterator[list[str]]:
    """Make every socket connection and name lookup in this process raise ``OSError`` while inside.

    Yields:
        The list of attempts (what was asked), filled as they happen: a loader that catches the
        error and falls back still shows up.
    """
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(" ".join(repr(a) for a in args[:2] if not isinstance(a, socket.socket)))
        raise OSError("network access during a data set load (blocked by automl.testing.no_network)")

    saved = (socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo, socket.create_connection)
    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.getaddrinfo = refuse
    socket.create_connection = refuse
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo, socket.create_connection = saved  # type: ignore[method-assign]


class DatasetConformance:
    """Checks any data set must pass; subclass it in a ``Test*`` class and set :attr:`dataset`.

    Attributes:
        dataset: The registered name (looked up through the plugin manager).
        options: The ``data:`` options passed to ``load`` and ``check``.
        bad_options: Options ``check`` must refuse with a ``ValueError`` (one dict each).
        columns: The feature columns, in order (None: not compared).
        rows: The number of rows (None: not compared).
        task: The task the table is for (None: the spec's; both None: fits either, not checked).
        network: True for a data set that downloads: the no-network check is skipped.
        min_class_rows: Rows each class needs (a stratified split with cross-validation).
    """

    dataset: ClassVar[str] = ""
    options: ClassVar[dict[str, Any]] = {}
    bad_options: ClassVar[tuple[dict[str, Any], ...]] = ()
    columns: ClassVar[tuple[str, ...] | None] = None
    rows: ClassVar[int | None] = None
    task: ClassVar[Task | None] = None
    network: ClassVar[bool] = False
    min_class_rows: ClassVar[int] = 5

    # -- helpers subclasses may override ------------------------------------------------

    def spec(self) -> DatasetSpec:
        """The registered record (override to test a spec that is not installed)."""
        from automl.plugin import get_plugin_manager

        assert self.dataset, f"{type(self).__name__} must set `dataset` to a registered name"
        record: DatasetSpec = get_plugin_manager().datasets.get(self.dataset)
        return record

    def load(self) -> Table:
        """The table, loaded as the plan loads it, sockets blocked unless :attr:`network`."""
        guard = contextlib.nullcontext() if self.network else no_network()
        with guard:
            return self.spec().load(dict(self.options))

    def the_task(self) -> Task | None:
        return self.task or self.spec().task

    # -- the checks -----------------------------------------------------------------------

    def test_spec_is_well_formed(self) -> None:
        spec = self.spec()
        assert spec.name == self.dataset or not self.dataset
        assert spec.description, "give the DatasetSpec a one-line description for `automl plugins`"
        assert spec.task in (None, "classification", "regression"), f"task {spec.task!r}"
        assert callable(spec.load), "load must be callable as load(options)"
        if self.task is not None and spec.task is not None:
            assert spec.task == self.task, f"the spec's task is {spec.task!r}, the kit expects {self.task!r}"
        if spec.check is not None:
            spec.check(dict(self.options))
            for bad in self.bad_options:
                with pytest.raises(ValueError) as info:
                    spec.check(dict(bad))
                assert str(info.value), f"check refused {bad} without saying why"
        elif self.bad_options:
            pytest.fail(f"bad_options are given but the spec has no check to refuse them: {self.bad_options}")

    def test_loads_a_table(self) -> None:
        import pandas as pd

        from automl.plugin import Table

        table = self.load()
        assert isinstance(table, Table), f"load returned a {type(table).__name__}, not an automl Table"
        X, y = table.X, table.y
        assert isinstance(X, pd.DataFrame), f"Table.X is a {type(X).__name__}, not a DataFrame"
        assert isinstance(y, pd.Series), f"Table.y is a {type(y).__name__}, not a Series"
        assert len(X) == len(y) > 0, f"{len(X)} feature rows but {len(y)} targets"
        assert X.index.equals(y.index), "Table.X and Table.y are not on the same index (rows would be misaligned)"
        assert X.shape[1] > 0, "no feature column"
        names = list(X.columns)
        assert all(isinstance(c, str) for c in names), f"column names must be strings: {names[:10]}"
        assert len(set(names)) == len(names), "duplicate column names"
        if y.name is not None:
            assert y.name not in names, f"the target {y.name!r} is also a feature column"
        for column in names:  # the target copied under another name is a leak every trial would exploit
            if X[column].equals(y.rename(column)):
                pytest.fail(f"the feature column {column!r} is the target itself")

    def test_declared_columns_and_rows(self) -> None:
        if self.columns is None and self.rows is None:
            pytest.skip("the kit declares neither columns nor rows")
        table = self.load()
        if self.columns is not None:
            assert list(table.X.columns) == list(self.columns), (
                f"columns {list(table.X.columns)} are not the declared {list(self.columns)}")
        if self.rows is not None:
            assert len(table.y) == self.rows, f"{len(table.y)} rows, declared {self.rows}"

    def test_fits_its_task(self) -> None:
        import pandas as pd

        from automl.plugin import check_table, split

        task = self.the_task()
        if task is None:
            pytest.skip("the data set fits either task and the kit names none")
        table = self.load()
        check_table(table, task)
        if task == "classification":
            counts = table.y.value_counts()
            assert len(counts) >= 2, f"a classification target with {len(counts)} class(es)"
            small = {str(k): int(v) for k, v in counts.items() if v < self.min_class_rows}
            assert not small, f"classes with fewer than {self.min_class_rows} rows: {small}"
        else:
            assert pd.api.types.is_numeric_dtype(table.y) and not pd.api.types.is_bool_dtype(table.y), (
                f"a regression target of dtype {table.y.dtype}")
            assert table.y.nunique() > 2, f"a regression target with {table.y.nunique()} distinct values"
        parts = split(table, task, valid=0.2, test=0.2, seed=0)
        assert len(parts.train) and len(parts.valid) and len(parts.test)

    def test_deterministic(self) -> None:
        import pandas as pd

        first, second = self.load(), self.load()
        pd.testing.assert_frame_equal(first.X, second.X, obj="Table.X of two loads")
        pd.testing.assert_series_equal(first.y, second.y, obj="Table.y of two loads")

    def test_options_unchanged(self) -> None:
        options = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
                   for k, v in self.options.items()}
        guard = contextlib.nullcontext() if self.network else no_network()
        with guard:
            self.spec().load(options)
        assert options == self.options, f"load changed the options it was given: {options} (was {self.options})"

    def test_no_network(self) -> None:
        if self.network:
            pytest.skip(f"{self.dataset} is declared to download")
        with no_network() as attempts:
            try:
                self.spec().load(dict(self.options))
            except OSError as exc:
                pytest.fail(f"loading needs the network: {exc}")
        assert not attempts, f"loading tried to reach the network ({attempts[:3]}) and fell back: set network = True"
