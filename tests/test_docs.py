"""The documentation: generated blocks up to date, a short front page, no broken relative links."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pan_lib import docs
from pan_lib.tables import README_BEGIN, README_END

LINK_RE = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE_RE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
HEADING_RE = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)


def doc_files(repo_root: Path) -> list[Path]:
    return [repo_root / "README.md", *sorted((repo_root / "docs").glob("*.md"))]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces -> hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def relative_links(text: str) -> list[str]:
    text = FENCE_RE.sub("", text)
    return [t for t in LINK_RE.findall(text) if not re.match(r"^[a-z]+:", t)]


@pytest.fixture(scope="module")
def render():
    return docs.render_source


# ----------------------------------------------------------------------------- the generator
def test_find_and_replace_blocks():
    text = "a\n<!-- generated: x -->\nold\n<!-- end generated -->\nb\n<!-- generated: y -->\n<!-- end generated -->\n"
    assert [b.source for b in docs.find_blocks(text)] == ["x", "y"]
    new = docs.replace_blocks(text, lambda source: f"| {source} |")
    assert new == ("a\n<!-- generated: x -->\n| x |\n<!-- end generated -->\nb\n"
                   "<!-- generated: y -->\n| y |\n<!-- end generated -->\n")
    assert docs.replace_blocks(new, lambda source: f"| {source} |") == new


def test_unterminated_block_and_unknown_source_are_errors():
    with pytest.raises(ValueError, match="no '<!-- end generated -->'"):
        docs.find_blocks("<!-- generated: x -->\ntext\n")
    with pytest.raises(ValueError, match="unknown generated block source"):
        docs.render_source("no.such.source")
    with pytest.raises(FileNotFoundError):
        docs.render_source("results/bench/no_such_file.md")


def test_results_file_is_included_verbatim(repo_root):
    source = repo_root / "results" / "bench" / "loader.md"
    included = docs.render_source("results/bench/loader.md")
    assert included.splitlines()[0] == "#### " + source.read_text().splitlines()[0][2:]
    assert included.splitlines()[1:] == source.read_text().strip().splitlines()[1:]


def test_generator_is_idempotent(repo_root, render):
    for page in docs.doc_pages(repo_root / "docs"):
        once = docs.replace_blocks(page.read_text(), render)
        assert docs.replace_blocks(once, render) == once, page


def test_committed_docs_are_up_to_date(repo_root, render):
    stale = docs.stale_pages(docs.doc_pages(repo_root / "docs"), render)
    assert not stale, f"stale pages (run python -m pan_lib.docs): {sorted(p.name for p in stale)}"


def test_check_fails_on_a_hand_edited_block(tmp_path, repo_root, capsys):
    for page in docs.doc_pages(repo_root / "docs"):
        shutil.copy(page, tmp_path / page.name)
    assert docs.main(["--check", "--docs-dir", str(tmp_path)]) == 0
    page = tmp_path / "training.md"
    text = page.read_text()
    assert "| sthv2 | Lite | resnet50 | 80 |" in text
    page.write_text(text.replace("| sthv2 | Lite | resnet50 | 80 |", "| sthv2 | Lite | resnet50 | 81 |"))
    assert docs.main(["--check", "--docs-dir", str(tmp_path)]) == 1
    assert "stale: " in capsys.readouterr().out
    assert docs.main(["--docs-dir", str(tmp_path)]) == 0
    assert page.read_text() == text


def test_every_docs_table_is_generated(repo_root):
    """A table row outside a generated block is a table typed by hand."""
    for page in docs.doc_pages(repo_root / "docs"):
        if page.name == "ARCHITECTURE.md":
            continue
        text = FENCE_RE.sub("", page.read_text())
        outside = re.sub(r"<!-- generated: \S+ -->\n.*?<!-- end generated -->", "", text, flags=re.DOTALL)
        rows = [line for line in outside.splitlines() if line.startswith("|")]
        assert not rows, f"{page.name}: hand-written table rows {rows[:2]}"


# ----------------------------------------------------------------------------- the front page
def test_readme_is_a_short_front_page(repo_root):
    text = (repo_root / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert "make workbook" in text and "make test" in text
    assert "papermill notebooks/03_train_full.ipynb out.ipynb -p dataset sthv2" in text
    assert README_BEGIN in text and README_END in text
    for page in ("data", "training", "evaluation", "benchmarks", "results", "troubleshooting"):
        assert f"(docs/{page}.md)" in text


def test_relative_links_point_to_existing_files(repo_root):
    broken = []
    for page in doc_files(repo_root):
        for target in relative_links(page.read_text()):
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(repo_root)}: {target}")
            elif anchor and file.suffix == ".md":
                anchors = {github_anchor(h) for h in HEADING_RE.findall(FENCE_RE.sub("", file.read_text()))}
                if anchor not in anchors:
                    broken.append(f"{page.relative_to(repo_root)}: {target} (no such heading)")
    assert not broken, broken
