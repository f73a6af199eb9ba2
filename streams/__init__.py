"""The service, by concern: kafka/, ingest/, pipeline/ (the worker), devstack/, cli/."""
