"""Realistic CDC workload for the simulated CRM: an in-memory Oracle source (the truth) and the
GoldenGate (or Debezium) JSON messages its changes produce. Tables and columns: crm_schema.yaml."""

from orchestration.workload.capture import WorkloadMessage
from orchestration.workload.catalogue import Catalogue, load_catalogue
from orchestration.workload.config import WorkloadConfig
from orchestration.workload.generator import WorkloadGenerator, generate_workload
from orchestration.workload.result import Workload, as_text

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
