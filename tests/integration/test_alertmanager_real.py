"""A real Alertmanager (Debian package) with the routes of deploy/alertmanager: the band
alert from a real Prometheus reaches a webhook receiver that the test runs.

The stack is the session fixture ``monitored`` (tests/integration/monitoring.py): the
webhook URL of deploy/alertmanager/alertmanager.yml is rewritten to the test's receiver
and the band route's group_wait shortened to 1 s; the band alerts' ``for:`` is
shortened in a test copy of the Prometheus rules.
"""

from __future__ import annotations

import pytest

from tests.integration.monitoring import UNDER_VALUE, Monitored, http_json
from tests.integration.workers import wait_for

pytestmark = pytest.mark.timeout(240)


def test_band_alert_is_delivered_to_the_webhook(monitored: Monitored) -> None:
    monitored.drive_under_band()
    receiver = monitored.receiver
    (alert, *_) = wait_for(
        lambda: receiver.delivered("MarketingAcvUnderBand"),
        timeout_seconds=60,
        what="MarketingAcvUnderBand POSTed to the webhook",
    )
    body = next(b for b in receiver.bodies if alert in b["alerts"])
    assert body["version"] == "4"
    assert body["receiver"] == "marketing-acv-band-webhook"
    assert body["status"] == "firing"
    assert body["groupLabels"] == {"alertname": "MarketingAcvUnderBand", "band": "under"}
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["system"] == "revpulse"  # Prometheus' external label
    assert "below the moderate threshold" in alert["annotations"]["description"]

    # The moderate alert fires in Prometheus too (the value is also below strong), but the
    # inhibit rule keeps it from the receiver while the under alert fires.
    am_alerts = wait_for(
        lambda: [
            a
            for a in http_json(f"http://127.0.0.1:{monitored.alertmanager_port}/api/v2/alerts")
            if a["labels"]["alertname"] == "MarketingAcvModerateBand"
        ],
        timeout_seconds=30,
        what="MarketingAcvModerateBand in Alertmanager",
    )
    assert am_alerts[0]["status"]["state"] == "suppressed"
    assert am_alerts[0]["status"]["inhibitedBy"]
    assert receiver.delivered("MarketingAcvModerateBand") == []
    assert float(monitored.prometheus.query("revpulse:marketing_acv:30d")[0]["value"][1]) == (
        UNDER_VALUE
    )
