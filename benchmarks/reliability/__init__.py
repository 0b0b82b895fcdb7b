"""Reliability figures of issue 17: kill -9 the driver and resume, two drivers on one run directory.

``python -m benchmarks.reliability.kill_loop OUT --kills 15 --seed 0`` and
``python -m benchmarks.reliability.two_drivers OUT --tries 10``; results in ``RESULTS.md``.
"""
