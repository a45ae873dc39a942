"""Each committed notebook is a jupytext pair: ``notebooks/<study>.py`` (py:percent, the source a
maintainer edits) and the executed ``notebooks/<study>.ipynb``. The pair must hold the same cells,
and the committed notebook must be clean: no papermill ``injected-parameters`` cell (it would reset
``DATA_DIR`` for a user who edits the parameters cell and runs all), no papermill/execution
metadata, no TensorFlow C++ start-up lines in the outputs."""
from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.config import load_jupytext_config

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PAIRS = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
TF_STARTUP = ("WARNING: All log messages before absl::InitializeLog()", "oneDNN custom operations",
              "Could not find cuda drivers", "Unable to register cu", "TF-TRT Warning",
              "This TensorFlow binary is optimized")


def test_every_notebook_has_a_source():
    assert PAIRS, f"no notebooks in {NOTEBOOKS}"
    sources = sorted(p.stem for p in NOTEBOOKS.glob("*.py"))
    assert sources == PAIRS, f"notebooks {PAIRS} vs py:percent sources {sources}"


@pytest.mark.parametrize("study", PAIRS)
def test_pair_in_sync(study):
    config = load_jupytext_config(str(NOTEBOOKS))
    assert config is not None, "jupytext.toml not found above notebooks/"
    expected = jupytext.writes(jupytext.read(NOTEBOOKS / f"{study}.ipynb"), fmt="py:percent", config=config)
    actual = (NOTEBOOKS / f"{study}.py").read_text(encoding="utf-8")
    assert actual == expected, (
        f"notebooks/{study}.py and notebooks/{study}.ipynb differ: run `jupytext --sync notebooks/{study}.py`")


@pytest.mark.parametrize("study", PAIRS)
def test_committed_notebook_is_clean(study):
    nb = nbformat.read(NOTEBOOKS / f"{study}.ipynb", as_version=4)
    assert "papermill" not in nb.metadata
    for i, cell in enumerate(nb.cells, 1):
        assert "injected-parameters" not in cell.metadata.get("tags", []), f"cell {i} is papermill's injected cell"
        assert set(cell.metadata) <= {"tags"}, f"cell {i} carries metadata {sorted(cell.metadata)}"
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.get("output_type") == "stream" else ""
            for marker in TF_STARTUP:
                assert marker not in text, f"cell {i} output holds TensorFlow's start-up line {marker!r}"
