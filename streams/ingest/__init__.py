"""Getting events in: the signed HTTP endpoint, body formats, the client, CSV, backfills."""
