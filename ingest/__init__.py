"""Turning article files into indexed, embedded chunks in Chroma."""

from ingest.pipeline import Ingestor, ingest

__all__ = ["Ingestor", "ingest"]
