"""Prometheus series of the HTTP ingestion API, all built in one factory on a given registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

REJECT_REASONS = (
    "unsigned",
    "bad_timestamp",
    "stale_timestamp",
    "bad_signature",
    "unknown_source",
    "invalid_request",
    "too_large",
    "unsupported_media_type",
    "invalid_body",
    "invalid_events",
    "broker_unavailable",
    "internal",
)
DURATION_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class IngestMetrics:
    rejected: Counter
    accepted_events: Counter
    skipped_events: Counter
    duration: Histogram


def build_ingest_metrics(registry: CollectorRegistry) -> IngestMetrics:
    metrics = IngestMetrics(
        rejected=Counter(
            "revpulse_http_requests_rejected",
            "Requests to POST /v1/events answered with an error, by reason",
            ("reason",),
            registry=registry,
        ),
        accepted_events=Counter(
            "revpulse_http_events_accepted",
            "Events accepted by POST /v1/events (acknowledged by Kafka)",
            registry=registry,
        ),
        skipped_events=Counter(
            "revpulse_http_events_skipped",
            "Invalid events left out of a batch sent with skip_invalid=true",
            registry=registry,
        ),
        duration=Histogram(
            "revpulse_http_request_duration_seconds",
            "Time to answer POST /v1/events",
            buckets=DURATION_BUCKETS_SECONDS,
            registry=registry,
        ),
    )
    for reason in REJECT_REASONS:  # every reason is exported from the start, at 0
        metrics.rejected.labels(reason)
    return metrics
