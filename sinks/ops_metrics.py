"""Operational Prometheus series, all built in one factory on a given registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
PUBLISH_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
LOOP_LAG_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True)
class OpsMetrics:
    consumed: Counter
    rejected: Counter
    duplicates: Counter
    late: Counter
    latency: Histogram
    publish_seconds: Histogram
    publish_cpu_seconds: Histogram
    consumer_lag: Gauge
    sink_errors: Counter
    sink_last_success: Gauge
    ledger_recovered: Gauge
    ledger_owner: Gauge
    gate_partitions: Gauge
    gate_admitted: Counter
    entity_partitions: Gauge
    last_event: Gauge
    band_changes: Counter
    rebuilt_events: Gauge
    changelog_tail: Gauge
    ledger_events: Gauge
    published_series: Gauge
    bucket_days: Gauge
    facts_gaps: Counter
    events_skipped: Counter
    conflicting: Counter
    channels_overflowed: Counter
    publish_failures: Counter
    last_publish_success: Gauge
    loop_lag: Histogram


def build_ops_metrics(registry: CollectorRegistry) -> OpsMetrics:
    def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
        return Counter(name, doc, labels, registry=registry)

    return OpsMetrics(
        consumed=counter("revpulse_events_consumed", "Valid events read by the intake", ("type",)),
        rejected=counter(
            "revpulse_events_rejected", "Events dead-lettered as malformed", ("reason",)
        ),
        duplicates=counter(
            "revpulse_events_duplicate", "Events ignored as a repeated event_id", ("type",)
        ),
        late=counter("revpulse_events_late", "Events later than the allowed lateness", ("type",)),
        latency=Histogram(
            "revpulse_event_to_publish_latency_seconds",
            "From the event's arrival in Kafka to the publish that includes it",
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=registry,
        ),
        publish_seconds=Histogram(
            "revpulse_publish_duration_seconds",
            "Time one publish took, by step: computing the points (on its thread, once it "
            "holds the ledger), then each sink",
            ("step",),
            buckets=PUBLISH_BUCKETS_SECONDS,
            registry=registry,
        ),
        publish_cpu_seconds=Histogram(
            "revpulse_publish_compute_cpu_seconds",
            "CPU time of the thread that computed a publish's points (its compute step "
            "less the waits for the interpreter lock and the CPU)",
            buckets=PUBLISH_BUCKETS_SECONDS,
            registry=registry,
        ),
        consumer_lag=Gauge(
            "revpulse_consumer_lag_messages",
            "Messages behind the end of each assigned partition",
            ("topic", "partition"),
            registry=registry,
        ),
        sink_errors=counter(
            "revpulse_sink_errors",
            "Failed writes, by sink: a publish (redis, prometheus, alerts), or an entity part "
            "not written (redis-parts: the write failed, or the part's state could not be "
            "loaded or read)",
            ("sink",),
        ),
        sink_last_success=Gauge(
            "revpulse_sink_last_success_timestamp_seconds",
            "Wall-clock time a sink last took a write: a publish, or an entity part (redis-parts)",
            ("sink",),
            registry=registry,
        ),
        ledger_recovered=Gauge(
            "revpulse_ledger_recovered",
            "1 once this worker loaded the ledger from its state table",
            registry=registry,
        ),
        ledger_owner=Gauge(
            "revpulse_ledger_owner",
            "1 on the worker that owns the ledger partition and publishes metrics",
            registry=registry,
        ),
        gate_partitions=Gauge(
            "revpulse_id_gate_partitions",
            "By-id partitions whose id gate this worker holds (loaded from the id-gate table)",
            registry=registry,
        ),
        gate_admitted=Counter(
            "revpulse_id_gate_admitted_events",
            "Events this worker's id gates admitted and sent on to the ledger",
            registry=registry,
        ),
        entity_partitions=Gauge(
            "revpulse_entity_partitions",
            "By-entity partitions whose entity state this worker holds (REVPULSE_ENTITY_STAGE)",
            registry=registry,
        ),
        last_event=Gauge(
            "revpulse_last_event_timestamp_seconds",
            "Wall-clock time the intake last read an event",
            registry=registry,
        ),
        band_changes=counter(
            "revpulse_band_changes", "Band changes of ACV from marketing leads", ("band",)
        ),
        facts_gaps=counter(
            "revpulse_facts_skipped_events",
            "Events the ledger applied from facts messages its consumer skipped (read directly)",
            (),
        ),
        events_skipped=counter(
            "revpulse_events_skipped_messages",
            "Events-topic messages the intake's consumer skipped and the intake read directly",
            (),
        ),
        conflicting=counter(
            "revpulse_events_conflicting",
            "Events dead-lettered because their event_id was applied before with other content",
            ("type",),
        ),
        channels_overflowed=counter(
            "revpulse_channels_overflowed",
            "Distinct channels past REVPULSE_MAX_CHANNELS, counted under the 'overflow' label",
            (),
        ),
        publish_failures=counter(
            "revpulse_publish_failures",
            "Publishes that failed, by step: computing the points, or the sink that failed",
            ("step",),
        ),
        last_publish_success=Gauge(
            "revpulse_last_publish_success_timestamp_seconds",
            "Wall-clock time the sinks were last known current: a publish every sink took, "
            "or a check that found nothing new to publish (0 before the first)",
            registry=registry,
        ),
        loop_lag=Histogram(
            "revpulse_event_loop_lag_seconds",
            "How late a short sleep on the worker's event loop wakes up: time the loop was busy",
            buckets=LOOP_LAG_BUCKETS_SECONDS,
            registry=registry,
        ),
        changelog_tail=Gauge(
            "revpulse_ledger_changelog_tail_records",
            "Changelog records this worker read at start on top of its local table stores "
            "(ledger-state and id-gate; all of them with no local store, or one the broker no "
            "longer matches)",
            registry=registry,
        ),
        rebuilt_events=Gauge(
            "revpulse_ledger_rebuilt_events",
            "Accepted events the ledger held when it was last loaded from its state table",
            registry=registry,
        ),
        ledger_events=Gauge(
            "revpulse_ledger_events",
            "Distinct accepted events in the ledger",
            registry=registry,
        ),
        published_series=Gauge(
            "revpulse_published_series",
            "Metric series computed by the last publish (its cost and the sinks' size "
            "follow them: windows x segments x metrics)",
            registry=registry,
        ),
        bucket_days=Gauge(
            "revpulse_ledger_bucket_days",
            "UTC days the ledger holds a daily bucket amount on, at the last publish "
            "(bounded by REVPULSE_RETENTION_DAYS, whatever the history)",
            registry=registry,
        ),
    )
