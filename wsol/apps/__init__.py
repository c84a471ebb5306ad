"""Applications built on the engine and training: bench, demo, overlay (explain)."""
