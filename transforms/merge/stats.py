"""What one apply_changes call did, for the run's metadata."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class MergeStats:
    changes_read: int = 0  # bronze rows given
    duplicates: int = 0  # repeats of a (key, sequence) within the batch, dropped
    position_ties: int = (
        0  # (key, source position) pairs with two different changes: the Kafka offset decided
    )
    before_truncate: int = 0  # changes older than the table's truncate barrier, dropped
    values_not_castable: int = 0  # present non-null values their column type cannot hold (stored as null)
    pk_changes: int = 0  # primary-key changes in the batch
    keys_in_batch: int = 0  # distinct keys the batch changes
    keys_rebuilt: int = 0  # keys replayed from the change log (primary-key changes; SCD2: every touched key)
    keys_without_effect: int = 0  # SCD1: keys of the batch whose every change was older or a repeat
    rows_inserted: int = 0  # SCD1: new keys (tombstones included); SCD2: versions added
    rows_updated: int = 0  # SCD1: keys whose stored state changed; SCD2: versions changed
    rows_removed: int = 0  # SCD1: rows a truncate removed, tombstones purged; SCD2: versions dropped
    rows_deleted: int = (
        0  # SCD1: rows this commit wrote that are tombstones; SCD2: rebuilt keys with no current version
    )
    incomplete_rows: int = (
        0  # SCD1: rows this commit wrote that are live but incomplete; SCD2: current versions of rebuilt keys
    )
    truncated: bool = False  # the batch moved the truncate barrier
    tombstones_purged: bool = False  # the batch ran the tombstone purge
    new_columns: tuple[str, ...] = ()
    table_version: int | None = None  # the silver Delta version this call committed

    def as_dict(self) -> dict:
        result = asdict(self)
        result["new_columns"] = list(self.new_columns)
        return result
