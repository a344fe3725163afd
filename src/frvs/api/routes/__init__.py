"""Route modules, one per domain concept."""
