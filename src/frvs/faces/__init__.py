"""The face engine: still images -> detected, quality-scored faces -> templates -> scores."""
