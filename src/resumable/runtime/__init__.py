"""Runtime set-up: the opt-in persistent JAX compilation cache."""
