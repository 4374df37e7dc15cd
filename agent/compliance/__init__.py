"""Compliance: deadlines, ratios and not-docked checks, and the `report` statistics."""
