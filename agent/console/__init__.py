"""The dock console: `evidence-agent console`, a local web UI that talks to the daemon's gate."""
