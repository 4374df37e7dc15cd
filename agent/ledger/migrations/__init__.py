"""Numbered SQL migrations of the ledger, applied in order (agent.ledger.db)."""
