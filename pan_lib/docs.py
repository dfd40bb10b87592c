"""Generated blocks of the documentation pages (`docs/*.md`): tables come from results/ or the code.

A page marks each generated block with its source::

    <!-- generated: results/bench/loader.md -->
    ... (rewritten by `python -m pan_lib.docs`) ...
    <!-- end generated -->

A source is a Markdown file under `results/` (included as it is, its `# ` title turned into a
`#### ` heading), `cli:<module>` (the `--help` of `python -m <module>`, run in a subprocess at a fixed
width) or the name of one of the code renderers in `CODE_SOURCES` (the recipe table, the dataset
registry, the embedded class pairs and sizes, the model modalities, the notebook parameters, the
data_prep commands). `python -m pan_lib.docs` rewrites every block;
`python -m pan_lib.docs --check` only reports stale pages (exit status 1), which the tests run.
"""
from __future__ import annotations

import argparse
import functools
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from data_prep.__main__ import build_parser as data_prep_parser
from pan_lib.data.registry import DATASETS, prepare_command
from pan_lib.data.synthetic import CLASS_SETS, PAIRS, SIZES, class_names, strip_brackets
from pan_lib.data.transforms import CLIP_STATS
from pan_lib.engine.optim import FIRST_CONV_LR5
from pan_lib.engine.recipes import recipe_table
from pan_lib.models import MODALITIES, build_model

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS_DIR = REPO_ROOT / "docs"
BEGIN_RE = re.compile(r"^<!-- generated: (?P<source>\S+) -->\n", re.MULTILINE)
END = "<!-- end generated -->"
RESULTS_PREFIX = "results/"
CLI_PREFIX = "cli:"
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
HELP_COLUMNS = "80"


# ----------------------------------------------------------------------------- blocks
@dataclass(frozen=True)
class Block:
    source: str
    start: int          # index of the first character after the begin marker's newline
    end: int            # index of the end marker


def find_blocks(text: str) -> list[Block]:
    """Every generated block of a page, in order; a begin marker without its end marker is an error."""
    blocks = []
    pos = 0
    while (match := BEGIN_RE.search(text, pos)) is not None:
        end = text.find(END, match.end())
        if end < 0:
            raise ValueError(f"generated block {match['source']!r} has no '{END}'")
        blocks.append(Block(match["source"], match.end(), end))
        pos = end + len(END)
    return blocks


def replace_blocks(text: str, render: Callable[[str], str]) -> str:
    """`text` with the body of every generated block replaced by `render(source)` (plus a newline)."""
    parts, pos = [], 0
    for block in find_blocks(text):
        parts += [text[pos:block.start], render(block.source).strip("\n") + "\n"]
        pos = block.end
    return "".join(parts) + text[pos:]


# ----------------------------------------------------------------------------- rendering
def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub Markdown table of `rows` (dicts), columns in the given order (default: the first row's)."""
    columns = list(columns or (rows[0] if rows else []))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines)


def results_markdown(text: str) -> str:
    """A results Markdown file as it goes into a page: its `# ` title becomes a `#### ` heading."""
    lines = text.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines[0] = "#### " + lines[0][2:]
    return "\n".join(lines)


def recipes_markdown() -> str:
    return markdown_table(recipe_table())


def datasets_markdown() -> str:
    rows = [dict(dataset=f"`{d.name}`", classes=d.num_classes, train_flip="yes" if d.flip else "no",
                 frame_names=f"`{d.image_tmpl}`", frame_short_side=d.frame_scale, what=d.description,
                 prepare=f"`{prepare_command(d.name, f'data/{d.name}')}`")
            for d in DATASETS.values()]
    return markdown_table(rows)


def class_pairs_markdown() -> str:
    default = class_names("default")
    rows = []
    for number, (forward, backward, kind) in enumerate(PAIRS, start=1):
        in_default = number <= CLASS_SETS["default"]

        def label(template: str) -> str:
            name = strip_brackets(template)
            return f"{name} ({default.index(name)})" if in_default else name

        rows.append({"pair": number, "motion": kind, "class (index in the 12-class set)": label(forward),
                     "partner (played backwards)": label(backward),
                     "class set": "default" if in_default else "`--classes all` only"})
    return markdown_table(rows)


def sizes_markdown() -> str:
    classes = 2 * CLASS_SETS["default"]
    rows = []
    for name, s in SIZES.items():
        per_class = s["train_per_class"] + s["val_per_class"] + s["test_per_class"]
        rows.append({"`--size`": name,
                     "train / val / test per class": f"{s['train_per_class']} / {s['val_per_class']} / "
                                                      f"{s['test_per_class']}",
                     "frames": s["num_frames"], "px": s["resolution"],
                     f"videos ({classes} classes)": per_class * classes})
    return markdown_table(rows)


MODALITY_ROLES = {"TSN": "baseline", "TSM": "baseline", "RGB": "PAN_Full appearance stream",
                  "PA": "PAN_Full motion stream", "Lite": "PAN_Lite, one network",
                  "Flow": "optical-flow stream (TSN), beside RGB in TwoStream_Flow",
                  "RGBDiff": "RGB-difference stream (TSN), beside RGB in TwoStream_RGBDiff"}


def _short(values: Sequence[float]) -> str:
    """Per-channel statistics, written once when every channel has the same value."""
    text = [f"{v:.3g}" for v in values]
    return text[0] if len(set(text)) == 1 else "(" + ", ".join(text) + ")"


def modalities_markdown() -> str:
    rows = []
    for modality in MODALITIES:
        model = build_model(modality, num_classes=2, backbone="resnet_tiny")
        mean, std = CLIP_STATS[modality]
        rows.append({"modality": f"`{modality}`", "frames/segment": model.new_length,
                     "stem input channels": model.base_model.conv1.in_channels,
                     "first-conv lr (weight / bias)": "x5 / x10" if modality in FIRST_CONV_LR5 else "x1 / x2",
                     "normalisation mean / std (after /255)": f"{_short(mean)} / {_short(std)}",
                     "temporal shift": "yes" if model.shift else "no",
                     "head": "VAP" if model.head == "vap" else "average",
                     "role": MODALITY_ROLES.get(modality, "")})
    return markdown_table(rows)


def notebook_parameters_markdown(notebook_dir: Path = NOTEBOOK_DIR) -> str:
    import papermill  # optional heavy dependency: only this renderer needs it

    rows = [{"notebook": f"`{path.stem}`",
             "parameters": ", ".join(f"`{p}`" for p in papermill.inspect_notebook(str(path)))}
            for path in sorted(notebook_dir.glob("*.ipynb"))]
    return markdown_table(rows)


def data_prep_cli_markdown() -> str:
    sub = next(a for a in data_prep_parser()._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}  # argparse keeps no public list of them
    rows = [{"command": f"`python -m data_prep {name}`", "what": helps.get(name, "")} for name in sub.choices]
    return markdown_table(rows)


def cli_help_markdown(module: str) -> str:
    """`python -m <module> --help` as a text block, at a fixed width (the page must not depend on the terminal)."""
    env = {**os.environ, "COLUMNS": HELP_COLUMNS}
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"python -m {module} --help failed:\n{done.stderr}")
    return "```text\n" + done.stdout.rstrip() + "\n```"


CODE_SOURCES: dict[str, Callable[[], str]] = {
    "pan_lib.engine.recipes.recipe_table": recipes_markdown,
    "pan_lib.data.registry.DATASETS": datasets_markdown,
    "pan_lib.data.synthetic.PAIRS": class_pairs_markdown,
    "pan_lib.data.synthetic.SIZES": sizes_markdown,
    "pan_lib.models.MODALITIES": modalities_markdown,
    "notebooks.parameters": notebook_parameters_markdown,
    "data_prep.build_parser": data_prep_cli_markdown,
}


@functools.lru_cache(maxsize=None)
def render_code(source: str) -> str:
    """The Markdown of a code source, computed once per process (the code does not change under it)."""
    if source.startswith(CLI_PREFIX):
        return cli_help_markdown(source[len(CLI_PREFIX):])
    if source not in CODE_SOURCES:
        raise ValueError(f"unknown generated block source {source!r}; valid: a results/*.md file, "
                         f"cli:<module> or {', '.join(CODE_SOURCES)}")
    return CODE_SOURCES[source]()


def render_source(source: str, repo_root: Path = REPO_ROOT) -> str:
    """The Markdown of one source: a results/ Markdown file (read each time), `cli:<module>` or a code source."""
    if source.startswith(RESULTS_PREFIX):
        path = repo_root / source
        if not path.is_file():
            raise FileNotFoundError(f"generated block source {source} does not exist")
        return results_markdown(path.read_text())
    return render_code(source)


def stale_pages(pages: Sequence[Path], render: Callable[[str], str]) -> dict[Path, str]:
    """{page: its regenerated text} for the pages whose generated blocks are out of date."""
    stale = {}
    for page in pages:
        text = page.read_text()
        new = replace_blocks(text, render)
        if new != text:
            stale[page] = new
    return stale


def doc_pages(docs_dir: Path = DOCS_DIR) -> list[Path]:
    return sorted(docs_dir.glob("*.md"))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pan_lib.docs [--check]`: rewrite the generated blocks of docs/*.md."""
    p = argparse.ArgumentParser(prog="python -m pan_lib.docs", description=main.__doc__)
    p.add_argument("--check", action="store_true", help="only report stale pages; exit status 1 if any")
    p.add_argument("--docs-dir", type=Path, default=DOCS_DIR)
    args = p.parse_args(argv)
    stale = stale_pages(doc_pages(args.docs_dir), render_source)
    for page, text in stale.items():
        if args.check:
            print(f"stale: {page} (run python -m pan_lib.docs)")
        else:
            page.write_text(text)
            print(f"updated: {page}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
