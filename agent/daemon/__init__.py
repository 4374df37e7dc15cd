"""The daemon: wiring of every loop, supervision, sd_notify."""
