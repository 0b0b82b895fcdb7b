"""skops.io imported without torch: the same trusted estimator list, and scikit-learn's torch support untouched."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

#: Prints what a fresh interpreter has after importing skops.io one way or the other.
PROBE = """
import json, sys
{how}
from skops.io import _trusted_types
out = {{"torch": "torch" in sys.modules, "names": sorted(_trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES)}}
if sys.argv[1] == "later":  # after the import, scikit-learn's torch wrapper imports as before
    import sklearn.externals.array_api_compat.torch as wrapper
    out["later"] = wrapper.__name__
print(json.dumps(out))
"""
PLAIN = "import skops.io"
HELPER = "from automl_sklearn.skops_import import skops_io; skops_io()"


def _probe(how: str, later: bool = False) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE.format(how=how), "later" if later else "-"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_skops_io_lists_the_same_estimators_without_importing_torch() -> None:
    plain, helper = _probe(PLAIN), _probe(HELPER)
    assert len(helper["names"]) > 100 and helper["names"] == plain["names"]
    assert helper["torch"] is False
    if importlib.util.find_spec("torch") is not None:
        # The reason for the helper; when this fails, skops or scikit-learn stopped importing torch: drop the helper.
        assert plain["torch"] is True


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_the_torch_wrapper_still_imports_after_skops_io() -> None:
    assert _probe(HELPER, later=True)["later"] == "sklearn.externals.array_api_compat.torch"


def test_skops_io_is_the_module_and_leaves_no_import_hook() -> None:
    from automl_sklearn import skops_import

    hooks = list(sys.meta_path)
    assert skops_import.skops_io() is sys.modules["skops.io"]
    assert sys.meta_path == hooks
