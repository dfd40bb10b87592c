"""The conda environment and the pip packaging must name the same packages with the same pins."""
from __future__ import annotations

import re
import tomllib

import yaml


def _norm(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower()


def test_environment_yml_matches_pyproject(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    wanted = {_norm(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    env = yaml.safe_load((repo_root / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_norm(r) for r in pip_section if not r.startswith("-e")}
    assert listed == wanted, f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"
    assert "python=3.11" in env["dependencies"]


def test_torch_pins(repo_root):
    deps = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.14.1" in deps and "torchvision==0.29.1" in deps


def test_ci_runs_the_readme_test_command(repo_root):
    ci = (repo_root / ".ci" / "run").read_text()
    readme = (repo_root / "README.md").read_text()
    assert "make test" in ci and "make test" in readme


def test_readme_commands_are_make_targets(repo_root):
    """The front page's two commands exist in the Makefile and each installs what it needs (the venv)."""
    makefile = (repo_root / "Makefile").read_text()
    readme = (repo_root / "README.md").read_text()
    for target in ("workbook", "test"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:.*\bvenv\b", makefile, re.MULTILINE), target
