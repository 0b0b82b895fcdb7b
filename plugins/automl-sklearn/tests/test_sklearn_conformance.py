"""The sklearn trainer, its bundled data sets and the package pass the conformance kits."""

from __future__ import annotations

from automl.testing import DatasetConformance, PackageConformance, TrainerConformance

#: Reported only by some configs: the rows of a row share, a booster's kept rounds.
FIDELITY = ("train_rows", "boost_rounds")


class TestForestClassifier(TrainerConformance):
    trainer = "sklearn"
    config = {"model": "forest", "n_estimators": 6, "max_depth": 4}  # grows its trees over the steps
    other_config = {"model": "linear"}
    params = {"steps": 3}
    optional_metrics = FIDELITY


class TestLinearRegressor(TrainerConformance):
    trainer = "sklearn"
    task = "regression"
    config = {"model": "linear"}
    other_config = {"model": "hgb", "max_iter": 10}
    params = {"steps": 2}
    optional_metrics = FIDELITY


class TestForestRegressorOnnx(TrainerConformance):
    # Exported as ONNX: the file is scored by ONNX Runtime in float32.
    trainer = "sklearn"
    task = "regression"
    config = {"model": "forest", "n_estimators": 6, "max_depth": 4}
    params = {"steps": 2, "export": "onnx"}
    optional_metrics = FIDELITY


class TestIris(DatasetConformance):
    dataset = "iris"
    task = "classification"
    columns = ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)")
    rows = 150


class TestWine(DatasetConformance):
    dataset = "wine"
    task = "classification"
    rows = 178


class TestBreastCancer(DatasetConformance):
    dataset = "breast_cancer"
    task = "classification"
    rows = 569


class TestDigits(DatasetConformance):
    dataset = "digits"
    task = "classification"
    columns = tuple(f"pixel_{r}_{c}" for r in range(8) for c in range(8))
    rows = 1797


class TestDiabetes(DatasetConformance):
    dataset = "diabetes"
    task = "regression"
    columns = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
    rows = 442


class TestPackage(PackageConformance):
    package = "automl-sklearn"
    # scikit-learn, skops, skl2onnx and ONNX Runtime are what the trainer is; the boosting
    # libraries are optional (their models leave the zoo, see automl_sklearn.MISSING).
    optional = ("lightgbm", "onnxmltools", "xgboost")
