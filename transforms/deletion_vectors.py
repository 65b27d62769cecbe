"""Deletion vectors for tables that are big enough to gain from them.

With deletion vectors a MERGE marks the rows it replaces in a vector instead of rewriting the files
that hold them, so the cost of a batch follows the batch, not the table. On a small table rewriting
those files costs less than writing the vectors: warm 50-change silver batches into 300 rows took
4.9-5.0 s with them (37 Spark jobs, 8 of them writing vectors) and 3.5-4.2 s without (28 jobs). So
silver and gold tables start without them and get them once they hold DELETION_VECTORS_FROM_BYTES of
data (a judgement: rewriting that much still costs about a second on 2 cores). Tables made with them
on keep them.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from transforms.delta_commits import table_size_and_properties
from transforms.sql_text import quote_identifier, sql_string

DELETION_VECTORS = "delta.enableDeletionVectors"
DELETION_VECTORS_FROM_BYTES = 16 * 1024 * 1024


def turn_on_deletion_vectors_when_big(spark: SparkSession, path: str) -> bool:
    """Give the table deletion vectors once it holds DELETION_VECTORS_FROM_BYTES: one commit without
    data (and without userMetadata: call it outside a stage's commit), once per table. True when this
    call turned them on."""
    size, properties = table_size_and_properties(spark, path)
    if properties.get(DELETION_VECTORS) == "true" or size < DELETION_VECTORS_FROM_BYTES:
        return False
    spark.sql(
        f"ALTER TABLE delta.{quote_identifier(path)} SET TBLPROPERTIES ({sql_string(DELETION_VECTORS)} = 'true')"
    )
    return True
