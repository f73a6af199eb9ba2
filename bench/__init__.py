"""Benchmarks: speed is measured, not asserted. ``python -m bench.throughput --help``."""
