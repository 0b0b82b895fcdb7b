"""Loading the plugins (every ``automl`` command and every trial worker does) imports no heavy library it does
not use: scikit-learn, SciPy, torch, Optuna and Ray Tune come in only when a trainer, searcher or scheduler of
theirs is made, SQLAlchemy only when a store is opened (a trial's worker never opens one)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("sklearn", "scipy", "torch", "optuna", "lightgbm", "xgboost", "flaml", "ray.tune", "skops", "onnxruntime",
         "sqlalchemy")


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_loading_every_plugin_imports_no_heavy_library() -> None:
    code = ("from automl.plugins import get_plugin_manager\n"
            "pm = get_plugin_manager()\n"
            "assert 'sklearn' in pm.trainers.names() and 'asha' in pm.schedulers.names()")
    assert _loaded_after(code) == []


def test_a_trial_worker_imports_no_store() -> None:
    # What a trial's Ray worker imports before it runs the trial: the trial function, the plugins, the public API.
    code = ("import automl, automl.plugin, automl.trial_worker\n"
            "from automl.plugins import get_plugin_manager\n"
            "get_plugin_manager()")
    assert "sqlalchemy" not in _loaded_after(code)
    # The names moved out of the eager imports still resolve, and opening a store brings SQLAlchemy in.
    code = ("import automl, automl.plugin\n"
            "assert automl.Run.__name__ == 'Run' and automl.plugin.ResultsStore.__name__ == 'ResultsStore'\n"
            "from automl.plugin import clean\n"
            "from automl.plugins import get_plugin_manager\n"
            "get_plugin_manager().open_store('sqlite://')")
    assert "sqlalchemy" in _loaded_after(code)


def test_making_an_estimator_or_a_scheduler_imports_its_library() -> None:
    # The probe above can fail: here the same names are imported once the thing is made.
    code = ("from automl_sklearn.models import MODELS\n"
            "MODELS['forest'].factory('classification')()\n"
            "from automl.plugins import get_plugin_manager\n"
            "from automl.interfaces import Objective\n"
            "get_plugin_manager().schedulers.get('asha').factory([Objective('accuracy', 'max')], max_budget=3)")
    assert {"sklearn", "scipy", "ray.tune"} <= set(_loaded_after(code))
