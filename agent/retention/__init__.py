"""Retention: the wipe gate, releasing recordings from recorders, spool housekeeping."""
