"""Ingestion start-up rules and the OpenAPI document, without a server."""

from __future__ import annotations

import argparse

import pytest

from models.errors import ConfigError
from streams.cli import worker
from streams.devstack.stack import free_port
from streams.ingest.http import check_secrets, openapi_document
from streams.ingest.metrics import REJECT_REASONS
from streams.settings import Settings

SECRET = "a-long-enough-secret"


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({}, "no ingestion secret"),
        ({"ingest_secrets": ["short"]}, "at least 16"),
        ({"ingest_source_secrets": {"hubspot": ["short"]}}, "at least 16"),
        ({"ingest_secrets": [SECRET]}, None),
        ({"ingest_source_secrets": {"hubspot": [SECRET]}}, None),
        ({"insecure_dev_mode": True}, None),
    ],
)
def test_the_worker_refuses_to_start_without_a_good_secret(
    values: dict[str, object], error: str | None
) -> None:
    settings = Settings(**values)  # type: ignore[arg-type]
    if error is None:
        check_secrets(settings)
    else:
        with pytest.raises(ConfigError, match=error) as raised:
            check_secrets(settings)
        assert "short" not in str(raised.value)


def test_secrets_are_never_shown_in_settings() -> None:
    settings = Settings(ingest_secrets=[SECRET], ingest_source_secrets={"crm": [SECRET]})
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())


def test_openapi_document_names_every_rejection_reason() -> None:
    document = openapi_document()
    post = document["paths"]["/v1/events"]["post"]
    assert set(post["responses"]) == {"202", "400", "401", "413", "415", "422", "503"}
    reasons = document["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
    assert set(reasons) == set(REJECT_REASONS)
    assert set(post["requestBody"]["content"]) == {"application/json", "application/x-ndjson"}


def test_worker_command_refuses_before_it_touches_kafka() -> None:
    """No secret: the refusal comes first, not after the 30 s wait for an absent broker."""
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}")
    with pytest.raises(ConfigError, match="no ingestion secret"):
        worker.run(settings, argparse.Namespace())
