"""Examples the README and docs/ run (not installed with parity)."""
