"""What the notebooks show: plots, progress, and one module per widget (a plain callback plus its wiring)."""
