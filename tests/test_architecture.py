"""The package's shape: layers import only downwards, no import cycles, imports at the top of the file.

The contracts live in pyproject.toml (`[tool.importlinter]`, checked by import-linter, which sees
function-level imports too); the AST scan below keeps imports out of function bodies, so a cycle
cannot hide there again. Optional heavy dependencies may be imported where they are used.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("pan_lib", "data_prep")
# Optional or heavy third-party packages: imported lazily by the function that needs them, so that
# `import pan_lib` stays fast and works where one of them is missing.
LAZY_OK = ("cv2", "decord", "av", "matplotlib", "ipywidgets", "IPython", "papermill", "nbformat", "nbclient",
           "scipy", "pandas", "playwright", "tensorboard", "torch.utils.tensorboard", "tqdm.notebook",
           "torchvision.models.optical_flow")


def _function_level_imports(path: Path) -> list[str]:
    """`file:line module` for each import statement inside a function body."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = ["." * node.level + (node.module or "")]
            else:
                continue
            for name in names:
                if not any(name == ok or name.startswith(ok + ".") for ok in LAZY_OK):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
    return sorted(set(found))


def test_import_contracts_hold():
    """Layers, data_prep's place and acyclicity (pyproject.toml); fails on a new cycle or upward import."""
    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True) == 0


@pytest.mark.parametrize("package", PACKAGES)
def test_no_imports_inside_functions(package):
    files = sorted((REPO / package).rglob("*.py"))
    offenders = [hit for path in files for hit in _function_level_imports(path)]
    assert not offenders, "imports inside functions (move them to the top of the file):\n" + "\n".join(offenders)
