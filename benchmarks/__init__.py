"""Benchmarks of the automl engine (run from the repository root: ``python -m benchmarks.<name>``)."""
