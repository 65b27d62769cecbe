"""The layers' import contract (pyproject.toml, [tool.importlinter]): devtools > orchestration >
expectations > assets > resources > transforms, each importing only those below it, and no Dagster in
the engine. Checked by import-linter on the tree as it is, and on a copy given a forbidden import, so
the contract is known to fail when it should."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["devtools", "orchestration", "expectations", "assets", "resources", "transforms"]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), str(folder / "pyproject.toml"), "--no-cache"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_layer_imports_only_the_layers_below_it():
    result = lint_imports(ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden_import", "broken_contract"),
    [
        ("transforms/silver.py", "import orchestration.definitions", "One-way layers"),
        ("resources/connections.py", "import devtools.stack.stack", "One-way layers"),
        ("assets/factory.py", "import expectations.checks", "One-way layers"),
        ("transforms/cut.py", "import dagster", "No Dagster in the engine"),
    ],
)
def test_a_forbidden_import_breaks_the_contract(tmp_path, module, forbidden_import, broken_contract):
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc", "__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{forbidden_import}  # noqa\n")

    result = lint_imports(tmp_path)

    assert result.returncode != 0
    broken = [line.removesuffix(" BROKEN") for line in result.stdout.splitlines() if line.endswith(" BROKEN")]
    assert broken_contract in broken, result.stdout
    assert module.removesuffix(".py").replace("/", ".") in result.stdout
