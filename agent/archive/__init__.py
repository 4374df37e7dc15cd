"""Archive: the store interface, local and S3 stores, the archiver loop, bandwidth and backlog."""
