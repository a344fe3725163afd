"""Top-k search over templates behind one small interface (``VectorIndex``)."""
