"""One pydantic model tree for all configuration, loaded from YAML and environment."""
