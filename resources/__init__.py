"""How the platform reaches its servers: Kafka, Spark, Cassandra and the lake.

- connections: the Dagster resources (`dagster.ConfigurableResource`) that assets and checks take,
  and `resources_from_env()`, which builds them from CDC_* environment variables.
- spark_session: the Spark session with Delta configured (jars, settings, the lake's Hadoop settings).
- lake_check: before a run writes, the lake root and the Spark master answer, or the run fails
  saying what to check.

The layers, each importing only those below it (tests/unit/test_layers.py enforces it): transforms (the
engine, no Dagster), resources, assets, expectations, orchestration; devtools (the local stack, the
workload generator, the demo) uses them all and nothing imports it.
"""

# The local profile's settings (CDC_PROFILE=local): the local stack writes this file in its folder
# when its servers answer (CDC_* variable -> value); resources.connections reads it. Here, not in
# connections, so that the stack's tooling does not import Dagster or Spark to name it.
LOCAL_SETTINGS_FILE = "settings.json"
