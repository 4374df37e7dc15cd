"""Who may act: the operator register, roles and the one authorisation function."""
