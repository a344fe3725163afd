"""The ``frvs`` command: a thin shell over the services in ``frvs.app``."""
