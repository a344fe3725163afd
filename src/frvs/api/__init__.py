"""The REST API: thin FastAPI routes over the services of ``frvs.app``."""
