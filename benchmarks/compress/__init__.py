"""The compression benchmark (issue 7): see :mod:`benchmarks.compress.run`."""
