"""Benchmarks, the soak and the batch oracle (a test reference: not shipped).

Speed is measured, not asserted. ``python -m bench.throughput --help``.
"""
