"""Behavioural simulators of recorder hardware presenting real OS-level interfaces."""
