"""The ledger: SQLite, migrations, custody chain, outbox, signing key, locks, recordings."""
