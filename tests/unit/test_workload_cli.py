"""The workload CLI writes the true state and the messages of exactly the workload its options describe."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from devtools.workload import WorkloadConfig, generate_workload
from devtools.workload.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def test_cli_writes_the_state_and_messages_of_the_configured_workload(tmp_path, capsys):
    truth, dump = tmp_path / "truth.json", tmp_path / "messages.jsonl"
    code = main(
        [
            "--seed",
            "5",
            "--initial-rows",
            "90",
            "--changes",
            "120",
            "--before-image",
            "all",
            "--initial-load",
            "--overlap",
            "10",
            "--debezium-table",
            "S_PROD_INT",
            "--state-out",
            str(truth),
            "--dump",
            str(dump),
        ]
    )
    assert code == 0
    expected = generate_workload(
        WorkloadConfig(
            seed=5,
            initial_rows=90,
            changes=120,
            before_image="all",
            initial_load=True,
            overlap=10,
            debezium_tables=("S_PROD_INT",),
        )
    )
    assert json.loads(truth.read_text(), parse_float=Decimal) == expected.state()
    assert dump.read_text() == expected.messages_jsonl()
    assert f"{len(expected.messages)} messages on 8 topics" in capsys.readouterr().out


def test_cli_runs_as_a_module():
    ok = subprocess.run(
        [sys.executable, "-m", "devtools.workload", "--initial-rows", "60", "--changes", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "messages on 8 topics" in ok.stdout


def test_cli_rejects_an_unknown_before_image(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--before-image", "full"])
    assert exit_info.value.code == 2 and "--before-image" in capsys.readouterr().err
