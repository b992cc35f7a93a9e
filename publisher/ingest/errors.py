"""The one error ingestion raises for bad input: a sentence a person can act on."""

from __future__ import annotations


class IngestError(Exception):
    """Input that cannot be ingested (malformed, hostile, unsupported). Never a crash."""
