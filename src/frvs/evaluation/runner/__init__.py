"""Running evaluations: templates once per image, then the metrics."""
