"""One-shot actions behind CLI commands: status, verify, export, ingest DIR, check-config."""
