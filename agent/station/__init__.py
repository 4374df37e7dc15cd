"""The station context: config plus long-lived objects, credentials, clock sync, rosters."""
