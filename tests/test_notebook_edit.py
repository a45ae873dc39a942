"""Opening a committed notebook, editing its parameters cell and running all uses the edited
values (issue 13 item 6): the committed notebooks carry no papermill ``injected-parameters`` cell
that would reset them. Executed here with nbclient, as Jupyter's "Run all" would, on the
recommender at smoke sizes with ``DATA_DIR`` pointing at a small MovieLens folder."""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from kerasmt import runner

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _set_parameters(source: str, values: dict[str, object]) -> str:
    """Rewrite ``NAME = ...`` lines of a parameters cell (keeping their comments), as a user would."""
    lines = []
    for line in source.splitlines():
        name = line.split("=")[0].strip()
        if name in values and not line.startswith((" ", "#")):
            comment = line[line.index("#"):] if "  #" in line else ""
            line = f"{name} = {values[name]!r}  {comment}".rstrip()
        lines.append(line)
    return "\n".join(lines)


@pytest.mark.slow
def test_edited_parameters_cell_is_used_when_the_committed_notebook_runs(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    from kerasmt.datasets import movielens

    data = tmp_path / "movielens"
    movielens.synthesize(data, n=16000, seed=3, n_users=320, n_movies=1200)
    out = tmp_path / "out"
    nb = nbformat.read(NOTEBOOKS / "recommender.ipynb", as_version=4)
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    edits = {"DATA_DIR": str(data), "OUT_DIR": str(out), "SMOKE": True, "SEED": 3, "TOP_N": 3}
    cell.source = _set_parameters(cell.source, edits)
    for name, value in edits.items():
        assert f"{name} = {value!r}" in cell.source
    for name in ("KERASMT_SMOKE", "KERASMT_EXPLICIT_PARAMETERS", "KERASMT_PARAMETER_NAMES", "KERASMT_LOCK_TOKENS"):
        monkeypatch.delenv(name, raising=False)
    root = str(Path(runner.__file__).resolve().parents[1])
    env = {"PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    client = NotebookClient(nb, timeout=600, kernel_name=runner.KERNEL_NAME,
                            kernel_manager_class=runner._kernel_manager_class(env),
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()

    metrics = json.loads((out / "metrics.json").read_text())
    parameters = metrics["run"]["parameters"]
    assert {k: parameters[k] for k in edits} == edits
    assert metrics["run"]["smoke"] is True
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert f"data: {data}" in printed and "data: synthetic" not in printed
    assert str(data) in printed.split("data: ", 1)[1]  # the loader read the edited folder
