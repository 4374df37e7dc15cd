"""Bottom layer: clock, ids, errors, safe filesystem access, crash points, the durable copy."""
