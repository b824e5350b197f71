"""No module reaches into another module's private names (the layers themselves are checked by
``lint-imports`` in the test command, from the contracts in pyproject.toml)."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "hnnkit"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _private_imports(path: Path) -> list[str]:
    """``from M import _x`` and ``from M._private import ...`` where M is not this module's package."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        base = package.split(".")
        if node.level:
            base = base[: len(base) - node.level + 1]
        target = ".".join([*base, *(node.module.split(".") if node.module else [])])
        if not target.startswith("hnnkit"):
            continue
        owner = target.rpartition(".")[0] if target.split(".")[-1].startswith("_") else target
        private_module = any(p.startswith("_") for p in target.split(".")[1:])
        names = [a.name for a in node.names if a.name.startswith("_") and not a.name.endswith("__")]
        # a package may use its own private submodules; nobody else may
        if private_module and not package.startswith(owner):
            found.append(f"{here}: from {target} import ...")
        if names and target != package and not target.startswith(here):
            found.append(f"{here}: from {target} import {', '.join(names)}")
    return found


def test_the_check_finds_a_private_import(tmp_path, monkeypatch):
    fake = SRC / "cli.py"
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: "from .train import _x\n")
    assert _private_imports(fake) == ["hnnkit.cli: from hnnkit.train import _x"]


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_another_modules_private_names(path):
    assert _private_imports(path) == []
