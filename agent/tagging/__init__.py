"""Case metadata: validation and versions, the one tagging call, tags applied at discovery."""
