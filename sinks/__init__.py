"""Where metric points go: Redis, Prometheus, memory. One protocol, one file per sink."""
