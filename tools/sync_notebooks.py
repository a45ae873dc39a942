"""Copy the executed demo notebooks (``kerasmt demo`` output) into ``notebooks/``.

The committed notebooks are the demo run, so a reader sees every table and figure. What is
specific to that run is removed: papermill's ``injected-parameters`` cell (it would reset
``DATA_DIR`` and the demo sizes for a user who edits the parameters cell and runs all), papermill's
and the kernel's execution metadata, and TensorFlow's C++ start-up lines. The paired py:percent
source (``notebooks/<study>.py``, see ``jupytext.toml``) is then rewritten from the notebook.

    python tools/sync_notebooks.py runs/demo [study ...]
"""
from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat
from jupytext.config import load_jupytext_config

from kerasmt.runner import clean_executed_notebook

ROOT = Path(__file__).resolve().parents[1]


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The committed form of an executed notebook (see the module docstring)."""
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        cell.metadata = {"tags": tags} if tags else {}
    nb.metadata.pop("papermill", None)
    return clean_executed_notebook(nb)


def sync(demo_dir: Path, study: str) -> Path:
    source = demo_dir / study / f"{study}.ipynb"
    nb = clean(nbformat.read(source, as_version=4))
    target = ROOT / "notebooks" / f"{study}.ipynb"
    nbformat.write(nb, target)
    config = load_jupytext_config(str(target.parent))
    jupytext.write(nb, target.with_suffix(".py"), fmt="py:percent", config=config)
    size = target.stat().st_size / 2**20
    print(f"{source} -> {target} ({size:.1f} MB)")
    if size > 5:
        raise SystemExit(f"{target} is {size:.1f} MB; keep notebooks under 5 MB (smaller figures)")
    return target


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    demo_dir = Path(argv[0])
    studies = argv[1:] or sorted(p.name for p in demo_dir.iterdir() if (p / f"{p.name}.ipynb").is_file())
    for study in studies:
        sync(demo_dir, study)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
