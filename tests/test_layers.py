"""The bridge's layers, as DESIGN.md section 2 draws them: imports only point
down, package __init__ files stay cheap, and each package has one error tree.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.errors import BridgeError

ROOT = Path(__file__).resolve().parent.parent

#: The layers, bottom up: a module may import its own layer and those below.
#: bridge.errors is the root every layer's errors derive from.
LAYERS = (
    "agentproc",
    "bridge.errors",
    "bridge.turn",
    "bridge.store",
    "bridge.conversations",
    "bridge.channels",
    "bridge.server",
    "bridge.cli",
)

#: Each package's errors module and the one base its classes derive from.
ERROR_BASES = {
    "bridge.turn.errors": "TurnError",
    "bridge.store.errors": "StoreError",
    "bridge.conversations.errors": "ConversationError",
    "bridge.channels.errors": "ChannelError",
    "bridge.server.errors": "ServerError",
}


def layer_of(module: str) -> int:
    for rank, layer in reversed(list(enumerate(LAYERS))):
        if module == layer or module.startswith(layer + "."):
            return rank
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, absolute, with its line (type-only imports too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return found


def library_modules() -> list[Path]:
    paths = [*(ROOT / "agentproc").rglob("*.py"), *(ROOT / "bridge").rglob("*.py")]
    # bridge/__init__.py names every layer on purpose: it re-exports them lazily.
    return sorted(p for p in paths if p != ROOT / "bridge" / "__init__.py")


@pytest.mark.parametrize("path", library_modules(), ids=lambda p: module_name(p))
def test_imports_only_point_down(path: Path) -> None:
    own = layer_of(module_name(path))
    for line, target in imported_modules(path):
        if target.split(".")[0] not in ("agentproc", "bridge"):
            continue
        assert layer_of(target) <= own, (
            f"{path.relative_to(ROOT)}:{line} imports {target}, a layer above "
            f"{LAYERS[own]} (imports only point down: {' -> '.join(LAYERS)})"
        )


def test_package_inits_import_no_submodule() -> None:
    """Naming a layer costs nothing: its __init__ runs no import of the bridge."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import bridge.turn, bridge.store, bridge.conversations, bridge.channels, bridge.cli\n"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('bridge')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == str(
        [
            "bridge",
            "bridge.channels",
            "bridge.cli",
            "bridge.conversations",
            "bridge.store",
            "bridge.turn",
        ]
    )


def errors_modules_on_disk() -> set[str]:
    return {module_name(p) for p in (ROOT / "bridge").glob("*/errors.py")}


def test_every_errors_module_has_its_base() -> None:
    assert errors_modules_on_disk() == set(ERROR_BASES)


@pytest.mark.parametrize("name", sorted(ERROR_BASES))
def test_one_error_tree_per_package(name: str) -> None:
    module = importlib.import_module(name)
    base = getattr(module, ERROR_BASES[name])
    assert base.__bases__ == (BridgeError,)
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and obj.__module__ == name and issubclass(obj, BaseException)
    ]
    assert base in classes
    for cls in classes:
        assert issubclass(cls, base), f"{name}.{cls.__name__} does not derive from {base.__name__}"
        # The tree drawn in the docstrings names every class.
        assert cls.__name__ in (module.__doc__ or ""), cls.__name__
        assert cls.__name__ in (importlib.import_module("bridge.errors").__doc__ or "")


def test_the_root_errors_module_holds_only_the_root() -> None:
    import bridge.errors

    classes = [
        obj
        for obj in vars(bridge.errors).values()
        if inspect.isclass(obj)
        and obj.__module__ == "bridge.errors"
        and issubclass(obj, BaseException)
    ]
    assert classes == [BridgeError], "mixins (FileProblems) may live here, errors may not"
