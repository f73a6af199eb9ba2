"""The revenue domain: event contract, metric formulas and accumulators. No I/O, no clock."""
