"""Model packs: a detector and an embedder behind one small interface, with provenance."""
