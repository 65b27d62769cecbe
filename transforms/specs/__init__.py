"""The engine's inputs: the spec models of source tables and projections (no Dagster, no YAML)."""
