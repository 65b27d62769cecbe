"""The engine's inputs: the spec models of source tables and projections (no Dagster, no YAML), and
the words the declarative SQL shares with the engine."""

CHANGED_VIEW = "changed"  # in a spec's SQL: the view of the rows a batch changed (before and after)
ALL = "all"  # a gold entity's affected_keys value: any change to that table recomputes the whole entity
