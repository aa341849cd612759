"""The implementations parity ships. Each registers through the `parity.implementations` entry
point group, the same door a user's package comes through (see pyproject.toml)."""
