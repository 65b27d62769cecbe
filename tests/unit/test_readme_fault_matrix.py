"""README's fault matrix stays in step with the tests that prove it: every row names the test module(s)
that run its fault on real servers, each named module exists, and every fault module has a row."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADER = "| fault | result | test |"


def fault_rows() -> list[list[str]]:
    """The cells of each row of README's fault table (after its header and separator)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index(HEADER) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_every_fault_row_names_existing_test_modules_and_every_fault_module_has_a_row():
    rows = fault_rows()
    assert len(rows) >= 10, rows
    named = set()
    for fault, result, tests in rows:
        modules = re.findall(r"`(test_\w+\.py)`", tests)
        assert modules, f"README's fault row {fault!r} names no test module (result: {result!r})"
        for module in modules:
            assert (ROOT / "tests" / "integration" / module).is_file(), f"{fault!r}: {module} does not exist"
        named.update(modules)
    fault_modules = {path.name for path in (ROOT / "tests" / "integration").glob("test_faults_*.py")}
    assert fault_modules <= named, f"fault modules without a row in README: {sorted(fault_modules - named)}"
