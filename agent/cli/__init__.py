"""The `evidence-agent` command line: parsers and handlers on top of every other layer."""
