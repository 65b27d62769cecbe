"""Realistic CDC workload for the simulated CRM: an in-memory Oracle source (the truth) and the
GoldenGate (or Debezium) JSON messages its changes produce. Tables and columns: crm_schema.yaml."""

from devtools.workload.capture import WorkloadMessage
from devtools.workload.catalogue import Catalogue, load_catalogue
from devtools.workload.config import WorkloadConfig
from devtools.workload.generator import WorkloadGenerator, generate_workload
from devtools.workload.result import Workload, as_text

__all__ = [
    "Catalogue",
    "Workload",
    "WorkloadConfig",
    "WorkloadGenerator",
    "WorkloadMessage",
    "as_text",
    "generate_workload",
    "load_catalogue",
]
