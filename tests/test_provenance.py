"""Provenance helpers: the git sha ignores generated outputs, portable paths for committed files,
the one figure saver."""
from __future__ import annotations

import subprocess

import pytest

from pan_lib import provenance


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_git_sha_is_dirty_for_code_not_for_generated_outputs(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "results").mkdir()
    for name in ("code.py", "README.md", "results/table.md"):
        (tmp_path / name).write_text("v1\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "x")
    clean = provenance.git_sha(tmp_path)
    assert len(clean) == 40
    (tmp_path / "results" / "table.md").write_text("v2\n")
    (tmp_path / "README.md").write_text("v2\n")
    assert provenance.git_sha(tmp_path) == clean  # a run rewriting its outputs stays clean
    (tmp_path / "code.py").write_text("v2\n")
    assert provenance.git_sha(tmp_path) == clean + "-dirty"


def test_portable_text_relative_to_repo_and_labels_elsewhere(tmp_path):
    repo = str(provenance.REPO_ROOT)
    anchors = provenance.path_anchors(results=tmp_path / "out", data_root=[tmp_path / "data"])
    text = (f"-p run_root {repo}/results/runs -p out {tmp_path}/out/x.png; cd {repo}; "
            f"{tmp_path}/data/raw {repo}x https://example.org/a/b ../results/f.png")
    out = provenance.portable_text(text, anchors)
    assert out == (f"-p run_root results/runs -p out <results>/x.png; cd .; <data_root>/raw {repo}x "
                   "https://example.org/a/b ../results/f.png")
    assert provenance.absolute_paths(out) == [f"{repo}x"]
    assert provenance.portable({"a": [f"{repo}/data/e", 3]}, anchors) == {"a": ["data/e", 3]}


def test_absolute_paths_finds_only_absolute_ones():
    found = provenance.absolute_paths("see /usr/lib/x.py and results/runs/a, <r>/b/c, ~/x/y, 1/2/3, a//b/c")
    assert found == ["/usr/lib/x.py"]


def test_save_figure_writes_png_with_provenance(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = provenance.save_figure(fig, tmp_path / "sub" / "f.png", footer="made by a test",
                                  metadata={"Title": "t"}, close=True)
    info = Image.open(path).info
    assert info["Title"] == "t" and info["Source"].startswith("PAN workbook, git ")
    assert not plt.fignum_exists(fig.number)


def test_committed_results_hold_no_absolute_paths(repo_root):
    """Nothing under results/ (tables, records, executed notebooks, benchmarks) names an absolute path.

    The runs themselves (absolute paths for resuming) live outside results/ (`runs/results`)."""
    bad = {}
    for path in sorted((repo_root / "results").rglob("*")):
        if path.suffix in (".md", ".csv", ".json", ".ipynb", ".yaml", ".txt"):
            found = provenance.absolute_paths_in_file(path)
            if found:
                bad[str(path.relative_to(repo_root))] = found[:2]
    assert not bad, bad
