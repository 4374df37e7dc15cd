"""Ingest: register a volume's files, schedule earliest deadline first, copy, recover."""
