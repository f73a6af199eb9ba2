"""Adapters to Redis and Prometheus: where metric points go, and reading Redis back."""
