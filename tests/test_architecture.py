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
    from app.modules.audit import model as audit_model
    from app.modules.auth import model as auth_model
    from app.modules.events import model as events_model
    from app.storage.schema import Base

    owners = {
        "auth_": auth_model,
        "events_": events_model,
        "audit_": audit_model,
        "bus_": idempotency,
    }
    assert {t.name.split("_")[0] + "_" for t in Base.metadata.tables.values()} == set(owners)
    for table in Base.metadata.tables.values():
        prefix = next(p for p in owners if table.name.startswith(p))
        for foreign_key in table.foreign_keys:
            assert foreign_key.column.table.name.startswith(prefix), (
                f"{table.name} refers to {foreign_key.column.table.name} across a module boundary"
            )


def test_the_layout_in_docs_names_every_file_of_the_tree_and_no_other():
    """docs/architecture.md's layout is the tree as it is: a file added, moved or removed without
    it fails here."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("```\napp/\n", 1)[1].split("```", 1)[0]
    modules = sorted(
        p.name for p in (ROOT / "app" / "modules").iterdir() if (p / "module.py").exists()
    )
    folders: list[str] = ["app"]
    documented: set[str] = set()
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        if not line.strip() or indent >= 16:  # a description's continuation
            continue
        entry = line.split()[0]
        del folders[indent // 2 :]  # back up to this entry's folder
        if entry.endswith("/"):
            folders.append(entry.rstrip("/"))
            continue
        names = [entry.replace("<name>", m) for m in modules] if "<name>" in entry else [entry]
        documented.update("/".join([*folders, name]) for name in names)
    actual = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "app").rglob("*.py")
        if path.name != "__init__.py"
    }

    assert documented == actual
