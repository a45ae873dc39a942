"""What every ``tools/make_<study>_notebook.py`` generator shares: writing its cells as a notebook."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import nbformat
from nbformat.v4 import new_notebook


def write_notebook(cells: Sequence[nbformat.NotebookNode], study: str) -> Path:
    """Write ``cells`` as a Python 3 notebook to the first command-line argument, or by default
    to ``notebooks/<study>.ipynb``, and return the path."""
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "notebooks" / f"{study}.ipynb")
    nbformat.write(nb, out)
    print(f"wrote {out}")
    return out
