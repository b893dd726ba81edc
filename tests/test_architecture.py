"""Module boundaries, checked by import-linter's contracts in pyproject.toml.

Modules are independent; layers run worker > main > start-up > gateway > modules > bus > storage >
foundations; inside a module, module > handlers > unit of work > repository > model > contracts;
inside storage, the drivers above the port; the bus and the modules see storage only through its
port; the gateway sees only the modules' contracts; a worker never loads the HTTP process. A
broken contract fails this test.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept():
    # In a process of its own: import-linter reconfigures logging globally when it runs.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command;"
            " sys.argv = ['lint-imports', '--no-cache']; lint_imports_command()",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert f"{len(declared['contracts'])} kept, 0 broken" in result.stdout


def test_a_worker_loads_neither_litestar_nor_the_gateway():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, app.worker; print(sorted({m.split('.')[0] for m in sys.modules}"
            " & {'litestar', 'uvicorn'}), 'app.gateway' in sys.modules)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    assert loaded.stdout.split() == ["[]", "False"]


def test_modules_own_prefixed_tables_with_no_cross_module_foreign_keys():
    from app.bus import idempotency
    from app.modules.auth import model as auth_model
    from app.modules.events import model as events_model
    from app.storage.schema import Base

    owners = {"auth_": auth_model, "events_": events_model, "bus_": idempotency}
    assert {t.name.split("_")[0] + "_" for t in Base.metadata.tables.values()} == set(owners)
    for table in Base.metadata.tables.values():
        prefix = next(p for p in owners if table.name.startswith(p))
        for foreign_key in table.foreign_keys:
            assert foreign_key.column.table.name.startswith(prefix), (
                f"{table.name} refers to {foreign_key.column.table.name} across a module boundary"
            )
