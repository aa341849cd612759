"""The pytest plugin (placeholder while the harness takes shape)."""
