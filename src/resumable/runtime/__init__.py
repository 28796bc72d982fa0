"""Runtime set-up: the opt-in persistent JAX compilation cache; memory given back after each notebook cell."""
