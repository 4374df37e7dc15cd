"""Recorders: mount watch, volumes and identity, driver loops, recorder clocks, inventory."""
