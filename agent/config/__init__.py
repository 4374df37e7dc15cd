"""Configuration: one module per section, and the loader (TOML, env overrides)."""
