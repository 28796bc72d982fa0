"""Checkpoint and process tooling: checkpoint folders, the manager, training processes, sharding."""
