"""evidence-agent: edge software for body-worn recorder docks and interview rooms."""

__version__ = "0.1.0"
