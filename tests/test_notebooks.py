"""Every finished study's committed notebook runs under nbval in smoke mode, and the cells marked
``# NBVAL_CHECK_OUTPUT`` (parameter counts, label maps, metric values on fixed inputs) reproduce
their committed outputs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from kerasmt.runner import FINISHED_STUDIES

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("study", FINISHED_STUDIES)
def test_notebook_nbval_smoke(study, tmp_path):
    notebook = NOTEBOOKS / f"{study}.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    checked = [c for c in nb.cells if c.cell_type == "code" and "NBVAL_CHECK_OUTPUT" in c.source]
    assert checked, f"{notebook.name} has no # NBVAL_CHECK_OUTPUT cell"
    assert all(c.get("outputs") for c in checked), f"{notebook.name} is committed without outputs"
    env = dict(
        os.environ,
        KERASMT_SMOKE="1",
        KERASMT_RUNS_DIR=str(tmp_path / "runs"),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
         "--nbval-cell-timeout=900", str(notebook)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout
