"""Copy the executed demo notebooks (``kerasmt demo`` output) into ``notebooks/``.

The committed notebooks are the demo run, so a reader sees every table and figure. The run's
absolute ``OUT_DIR`` is removed from papermill's injected-parameters cell (it names a folder of
the machine that ran the demo); everything else is kept as executed.

    python tools/sync_notebooks.py runs/demo [study ...]
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def sync(demo_dir: Path, study: str) -> Path:
    source = demo_dir / study / f"{study}.ipynb"
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            lines = [line for line in cell.source.splitlines() if not line.startswith("OUT_DIR =")]
            cell.source = "\n".join(lines)
    target = ROOT / "notebooks" / f"{study}.ipynb"
    nbformat.write(nb, target)
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
