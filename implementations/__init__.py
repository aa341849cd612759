"""The implementations parity ships, installed as `parity_implementations` (the folder keeps its
short name). Each registers through the `parity.implementations` entry point group, the same door
a user's package comes through (see pyproject.toml)."""
