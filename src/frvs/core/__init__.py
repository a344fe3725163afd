"""Records every stage shares: geometry, templates and their model space, errors."""
