"""Hardware drivers: one module per kind of recorder interface, behind drivers.base."""
