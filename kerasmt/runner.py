"""Headless execution of the study notebooks, and the logic behind the ``kerasmt`` CLI.

Everything here is importable without TensorFlow (papermill, nbconvert and the dataset modules are
imported on first use), so ``kerasmt --help`` and the start of ``kerasmt run`` stay fast; the
notebook's kernel is the process that imports TensorFlow.

Main entry points:

- :func:`run_study` executes ``notebooks/<study>.ipynb`` with papermill into an output folder
  (executed notebook, HTML export, the notebook's own ``metrics.json`` and ``models/*.keras``).
- :func:`run_demo` runs every finished study on synthetic data and writes a summary.
- :func:`synthesize_dataset`, :func:`check_dataset`, :func:`fetch_dataset` wrap the dataset
  module of a study (:func:`kerasmt.datasets.for_study`).
"""
from __future__ import annotations

import ast
import contextlib
import inspect
import json
import keyword
import math
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TextIO

#: Studies whose notebook is complete; ``kerasmt demo`` runs these (when their notebook exists).
FINISHED_STUDIES: tuple[str, ...] = ("fairface", "recommender", "attribute_mtl", "utkface", "beauty", "fashion")

#: Parameters ``kerasmt demo`` passes to each study (not in smoke mode), sized so that every
#: finished study together runs in under 15 minutes on 2 CPU cores. Real-data runs use the
#: notebooks' own defaults (the reports' protocols).
DEMO_PARAMETERS: dict[str, dict[str, Any]] = {
    "fairface": {"EPOCHS": 8, "N_TRAIN": 3000, "N_VAL": 1000},
    "recommender": {},  # the notebook's synthetic defaults are already demo-sized (~35 s)
    "attribute_mtl": {"EPOCHS": 5, "BATCH_SIZE": 16, "LEARNING_RATE": 2e-3, "BN_MOMENTUM": 0.9},
    "utkface": {
        "N_SYNTHETIC": 1500, "SUBSET": 1500, "SYNTHETIC_IMAGE_SIZE": 64, "IMAGE_SIZE": 32, "BASE_FILTERS": 8,
        "BN_MOMENTUM": 0.9, "BATCH_SIZE": 64, "LEARNING_RATE": 2e-3, "AUGMENT": False, "EPOCHS": 9,
        "PATIENCE": 9, "N_SEEDS": 2, "SEARCH_CNNS": [10, 18], "EPOCHS_SEARCH": 3,
        "BACKBONES": ["VGG16", "ResNet50V2"], "WEIGHTS": None, "IMAGE_SIZE_MODEL_B": 32, "EPOCHS_MODEL_B": 6,
        "HEAD_ORDERS": ["dense-dropout", "dense-bn", "dense-dropout-bn"], "EPOCHS_HYPERBAND": 3,
        "EPOCHS_HEAD": 100, "EPOCHS_FINE_TUNE": 1,
    },
    "beauty": {
        "IMAGE_SIZE": 75, "N_PER_CLASS": 20, "EPOCHS": 2, "EPOCHS_TL": 30, "LEARNING_RATE_FT": 5e-5,
        "SWEEP": ["tl", "ft-1", "ft-3", "ft-6"], "GROUPED_SWEEP": ["tl", "best"],
        "CACHE_FEATURES": True, "CACHE_BOUNDARY": True, "AUGMENT_COPIES": 1, "FT_HEAD_FROM_TL": True,
        "SCRATCH_MODELS": ["SimpleNet"], "EPOCHS_SCRATCH": 1, "IMAGE_SIZE_SCRATCH": 32, "SCRATCH_LIMIT": 4,
        "BN_MOMENTUM_SCRATCH": 0.9, "N_PRETRAIN": 1000,
    },
    "fashion": {
        "IMAGE_SIZE": 128, "BACKBONE_REFINENET": "light", "BACKBONE_CLASSIFIER": "light", "WEIGHTS": None,
        "FEATURES": 32,
        "N_TEST": 40, "EPOCHS_REFINENET": 12, "EPOCHS_CLASSIFIER": 8, "BATCH_SIZE_REFINENET": 4, "N_TIMING": 3,
        "BACKBONE_MRCNN": "light", "MRCNN_INIT": "refinenet", "EPOCHS_MRCNN_HEADS": 1, "EPOCHS_MRCNN_ALL": 12,
        "MRCNN_OPTIMIZER": "adam", "LEARNING_RATE_MRCNN_HEADS": 0.002, "LEARNING_RATE_MRCNN_ALL": 0.002,
        "LEARNING_RATE_MRCNN_ALL_END": 0.0001, "BATCH_SIZE_MRCNN": 4, "MRCNN_VALIDATE": False,
    },
}

#: Rough seconds each study's demo takes on 2 CPU cores (the last demo run): ``kerasmt demo --jobs N``
#: starts the longest first, so that the parallel part ends as early as it can.
DEMO_SECONDS: dict[str, float] = {"attribute_mtl": 260, "utkface": 316, "beauty": 280, "fashion": 260,
                                  "fairface": 247, "recommender": 28}

#: Studies whose notebook measures CPU inference time: ``kerasmt demo --jobs N`` runs them alone,
#: after the others, so that no other notebook competes for the cores while they time.
TIMED_STUDIES: tuple[str, ...] = ("fashion",)

#: Environment variable naming the folder holding ``<study>.ipynb`` (default: ``notebooks/`` of
#: the checkout the ``kerasmt`` package lives in).
NOTEBOOKS_ENV = "KERASMT_NOTEBOOKS"

#: Parameters the runner injects itself; ``-p`` may not set them (use --data/--smoke/--out).
RESERVED_PARAMETERS = ("DATA_DIR", "SMOKE", "OUT_DIR")

#: Jupyter kernel used for every notebook (forced onto this process's interpreter).
KERNEL_NAME = "python3"

METRICS_FILE = "metrics.json"


# --------------------------------------------------------------------------------------- errors
class RunnerError(Exception):
    """A problem the CLI reports as ``error: <message>``; ``exit_code`` is the process status."""

    exit_code = 1


class UsageError(RunnerError):
    """Bad input from the user: unknown study, malformed parameter, missing data folder."""

    exit_code = 2


class StudyNotFoundError(UsageError):
    def __init__(self, study: str, folder: Path, available: Sequence[str]):
        self.study, self.folder, self.available = study, folder, list(available)
        listed = ", ".join(self.available) if self.available else "(none: no *.ipynb there)"
        super().__init__(
            f"unknown study {study!r}: {folder / (study + '.ipynb')} does not exist.\n"
            f"Available studies in {folder}: {listed}"
        )


class NotebookFailed(RunnerError):
    """The notebook raised in a cell (or its kernel died); carries the cell's error."""

    def __init__(
        self,
        study: str,
        *,
        ename: str,
        evalue: str,
        cell_index: int | None = None,
        exec_count: int | None = None,
        source: str = "",
        traceback: Sequence[str] = (),
        notebook: Path | None = None,
        html: Path | None = None,
    ):
        self.study, self.ename, self.evalue = study, ename, evalue
        self.cell_index, self.exec_count, self.source = cell_index, exec_count, source
        self.traceback = list(traceback)
        self.notebook, self.html = notebook, html
        super().__init__(self.describe())

    def describe(self, max_source_lines: int = 8, max_traceback_lines: int = 30) -> str:
        where = "in the kernel"
        if self.cell_index is not None:  # 0-based index in the source notebook, shown 1-based
            where = f"in cell {self.cell_index + 1}"
            if self.exec_count is not None:
                where += f" (In [{self.exec_count}])"
        lines = [f"notebook {self.study!r} failed {where}: {self.ename}: {self.evalue}"]
        if self.source:
            src = self.source.splitlines()
            lines.append("  cell source:")
            lines += [f"    {s}" for s in src[:max_source_lines]]
            if len(src) > max_source_lines:
                lines.append(f"    ... ({len(src) - max_source_lines} more lines)")
        if self.traceback:
            tb = _strip_ansi("\n".join(self.traceback)).splitlines()
            if len(tb) > max_traceback_lines:
                tb = ["..."] + tb[-max_traceback_lines:]
            lines.append("  traceback:")
            lines += [f"    {s}" for s in tb]
        if self.notebook is not None:
            lines.append(f"  executed notebook (with the error): {self.notebook}")
        if self.html is not None:
            lines.append(f"  html report: {self.html}")
        return "\n".join(lines)


class MissingMetricsError(RunnerError):
    """The notebook ran but did not write ``OUT/metrics.json`` (or wrote invalid JSON)."""


# ------------------------------------------------------------------------------------ notebooks
def notebooks_dir() -> Path:
    """Folder holding the study notebooks: ``$KERASMT_NOTEBOOKS``, else the ``kerasmt/notebooks``
    package data of an installed kerasmt, else ``<checkout>/notebooks``."""
    env = os.environ.get(NOTEBOOKS_ENV)
    if env:
        return Path(env).expanduser().resolve()
    import kerasmt

    package = Path(kerasmt.__file__).resolve().parent
    installed = package / "notebooks"
    return installed if installed.is_dir() else package.parent / "notebooks"


def available_studies(folder: str | os.PathLike | None = None) -> list[str]:
    """Stems of the ``*.ipynb`` files in the notebooks folder (sorted)."""
    folder = Path(folder) if folder is not None else notebooks_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def notebook_path(study: str) -> Path:
    """Path of ``<study>.ipynb``; an unknown study raises :class:`StudyNotFoundError` listing
    the available ones."""
    folder = notebooks_dir()
    path = folder / f"{study}.ipynb"
    if not study or os.sep in study or "/" in study or not path.is_file():
        raise StudyNotFoundError(study, folder, available_studies(folder))
    return path


def finished_studies() -> list[str]:
    """Studies in :data:`FINISHED_STUDIES` whose notebook exists."""
    have = set(available_studies())
    return [s for s in FINISHED_STUDIES if s in have]


def parameters_cell(path: str | os.PathLike) -> str | None:
    """Source of the notebook's cell tagged ``parameters`` (None when it has none)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell.source
    return None


def notebook_parameters(path: str | os.PathLike) -> list[str] | None:
    """Names assigned in the notebook's cell tagged ``parameters`` (None when it has none).

    Parsed with :mod:`ast`, so comments holding ``=`` (which papermill's own parser rejects)
    are fine."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                return None
            names: list[str] = []
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else (
                    [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
                for target in targets:
                    for sub in ast.walk(target):
                        if isinstance(sub, ast.Name) and sub.id not in names:
                            names.append(sub.id)
            return names
    return None


class _PapermillNoise:
    """Drops papermill's parameter-inference warnings (its parser fails on comments holding
    ``=``); :func:`run_study` checks the parameters itself with :func:`notebook_parameters`."""

    PREFIXES = ("Unable to parse line", "Passed unknown parameter")

    def filter(self, record: Any) -> bool:
        return not str(record.getMessage()).startswith(self.PREFIXES)


# ----------------------------------------------------------------------------------- parameters
_WORDS = {"true": True, "false": False, "none": None, "null": None}


def parse_value(text: str) -> Any:
    """A ``-p`` value: a Python/JSON literal when it parses as one (ints, floats, True/true,
    False/false, None/null, lists, dicts, quoted strings), else the text itself."""
    stripped = text.strip()
    if stripped.lower() in _WORDS:
        return _WORDS[stripped.lower()]
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return text


def parse_parameter(item: str) -> tuple[str, Any]:
    """``"NAME=VALUE"`` -> ``(NAME, parse_value(VALUE))``; errors say what was expected."""
    name, sep, value = item.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier() or keyword.iskeyword(name):
        what = "a Python keyword" if keyword.iskeyword(name) else "not a Python identifier"
        if not sep:
            what = "no '=' in it"
        raise UsageError(
            f"bad parameter -p {item!r}: {what}; expected NAME=VALUE with NAME a parameter of the "
            f"notebook's first cell (e.g. -p EPOCHS=5 -p LEARNING_RATE=1e-3)"
        )
    if name in RESERVED_PARAMETERS:
        option = {"DATA_DIR": "--data", "SMOKE": "--smoke", "OUT_DIR": "--out"}[name]
        raise UsageError(f"parameter {name} is set by the runner: use {option} instead of -p {name}=...")
    return name, parse_value(value)


def parse_parameters(items: Iterable[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items or ():
        name, value = parse_parameter(item)
        params[name] = value
    return params


# ------------------------------------------------------------------------------------ execution
@dataclass
class RunResult:
    """What :func:`run_study` produced (``ok=False`` only in :func:`run_demo` results)."""

    study: str
    out_dir: Path
    notebook: Path
    html: Path | None
    metrics_path: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    ok: bool = True
    error: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def models(self) -> list[Path]:
        return sorted((self.out_dir / "models").glob("*.keras"))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("out_dir", "notebook", "html", "metrics_path"):
            data[key] = None if data[key] is None else str(data[key])
        data["models"] = [str(p) for p in self.models]
        data["headline"] = headline(self.metrics)
        data["status"] = "ok" if self.ok else "FAILED"
        data.pop("metrics")
        return data


def _kernel_manager_class(extra_env: Mapping[str, str] | None = None) -> type:
    """An AsyncKernelManager whose IPython kernel always runs on ``sys.executable``, with
    ``extra_env`` added to the kernel's environment (per kernel: concurrent runs of ``kerasmt
    demo --jobs`` each get their own).

    Jupyter may resolve ``python3`` to a kernelspec of another environment (a user-level spec in
    ``~/.local/share/jupyter`` or on ``$JUPYTER_PATH``); the notebook must see the same
    interpreter, packages and ``kerasmt`` as the CLI, so the command is built here.
    """
    from jupyter_client import AsyncKernelManager

    added = dict(extra_env or {})

    class SameInterpreterKernelManager(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            env = dict(kw.pop("env", None) or os.environ)
            env.update(added)
            return await super()._async_pre_start_kernel(env=env, **kw)

        def __init__(self, **kwargs: Any):
            super().__init__(**kwargs)
            # CurveZMQ keys where this jupyter_client/pyzmq can provision them (also silences
            # ipykernel's "running over TCP without encryption" warning on every run)
            if "transport_encryption" in self.trait_names():
                try:
                    import zmq

                    if zmq.has("curve"):
                        self.transport_encryption = "auto"
                except Exception:  # older pyzmq / jupyter_client: plain TCP as before
                    pass

        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            return [
                sys.executable,
                "-m",
                "ipykernel_launcher",
                "-f",
                os.path.realpath(self.connection_file),
                *(extra_arguments or []),
            ]

    return SameInterpreterKernelManager


def _checkout_root() -> Path | None:
    """The source checkout ``kerasmt`` is imported from (None when installed into site-packages)."""
    import kerasmt

    root = Path(kerasmt.__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


@contextlib.contextmanager
def _kernel_environment(smoke: bool) -> Iterator[None]:
    """Environment the kernel inherits: ``KERASMT_SMOKE=1`` with ``smoke``, this ``kerasmt``
    on ``PYTHONPATH`` (so a checkout works without ``pip install``) and, unless the user set it,
    ``TF_CPP_MIN_LOG_LEVEL=3`` so TensorFlow's C++ warnings stay out of the report (Python
    errors and warnings still show). Restored afterwards."""
    saved = {k: os.environ.get(k) for k in ("KERASMT_SMOKE", "PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        if smoke:
            os.environ["KERASMT_SMOKE"] = "1"
        root = _checkout_root()
        if root is not None:
            parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            if str(root) not in parts:
                os.environ["PYTHONPATH"] = os.pathsep.join([str(root), *parts])
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_record_markdown(record: Mapping[str, Any]) -> str:
    """The ``run`` record of ``metrics.json`` (:func:`kerasmt.utils.run_record`) as a short
    markdown block: command, host, devices, git commit, package versions and every parameter."""
    def code(value: Any) -> str:
        text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
        return "`" + text.replace("`", "'") + "`"

    devices = record.get("devices") or {}
    git = record.get("git")
    versions = record.get("versions") or {}
    lines = ["### Run record", ""]
    if record.get("command"):
        lines.append(f"- command: {code(record['command'])}")
    lines.append(f"- time: {record.get('time')} on host `{record.get('host')}`, Python {record.get('python')}, "
                 f"{record.get('platform')}")
    lines.append(f"- devices: {devices.get('device') or devices.get('note') or devices.get('cpu')}")
    if git:
        lines.append(f"- git: `{git.get('commit')}`{' (uncommitted changes)' if git.get('dirty') else ''}")
    lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v))
    params = record.get("parameters")
    if isinstance(params, Mapping) and params:
        explicit = set(record.get("explicit_parameters") or ())
        smoke = record.get("smoke_sizes") or {}
        lines += ["", "| parameter | value | set by |", "|---|---|---|"]
        for name, value in params.items():
            by = "-p / --data" if name in explicit else "smoke size" if name in smoke else "notebook"
            lines.append(f"| {name} | {code(value).replace('|', '&#124;')} | {by} |")
    return "\n".join(lines) + "\n"


def export_html(ipynb: str | os.PathLike, html: str | os.PathLike,
                run: Mapping[str, Any] | None = None) -> Path:
    """nbconvert HTML export of an (executed) notebook; ``run`` (a run record) is shown at the
    top of the report (the ``.ipynb`` itself is left unchanged)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(ipynb), as_version=4)
    if run:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(run_record_markdown(run)))
    body, _ = HTMLExporter().from_notebook_node(nb)
    from kerasmt.utils import atomic_write_text

    return atomic_write_text(html, body)


#: Lines that TensorFlow's C++ runtime writes to the kernel's stderr when it starts (absl, oneDNN,
#: CUDA probing). ``TF_CPP_MIN_LOG_LEVEL`` does not silence them in TF 2.21, so they are removed
#: where the kernel's output is captured: from the executed notebook's stream outputs.
TF_STARTUP_NOISE = re.compile(
    r"^(?:WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+\s+\d+ \S+\.cc:\d+\] .*"
    r"|.*This TensorFlow binary is optimized to use available CPU instructions.*"
    r"|.*To enable the following instructions:.*rebuild TensorFlow with the appropriate compiler flags\.)$"
)


def clean_executed_notebook(nb: Any) -> Any:
    """Remove TensorFlow's C++ start-up lines (:data:`TF_STARTUP_NOISE`) from the stream outputs of
    an executed notebook (an ``nbformat`` node, changed in place and returned); an output left
    empty is dropped."""
    for cell in nb.cells:
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                kept = [ln for ln in out.get("text", "").splitlines(keepends=True)
                        if not TF_STARTUP_NOISE.match(ln.rstrip("\n"))]
                if not kept:
                    continue
                out["text"] = "".join(kept)
            outputs.append(out)
        if "outputs" in cell:
            cell["outputs"] = outputs
    return nb


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def _source_cell_index(path: Path, source: str, fallback: int | None) -> int | None:
    """0-based index of the failing cell in the *source* notebook (papermill's index counts the
    cell it injects)."""
    try:
        import nbformat

        nb = nbformat.read(str(path), as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.get("source", "") == source:
                return i
    except Exception:  # best effort only
        pass
    return fallback


#: Kernel output lines ``kerasmt run`` shows with its progress: the epoch lines of
#: :class:`kerasmt.training.EpochLine` and the plain lines of :func:`kerasmt.utils.progress`.
PROGRESS_LINE = re.compile(r"^(?:\S+ )?epoch \d+(?:/\d+)? \([\d.]+ s\): .*$|^.*: \d+(?:/\d+ \(\d+%\))? \S+ in [\d.]+ s$")


class _ProgressLines:
    """papermill's ``stdout_file``: passes the kernel's epoch and progress lines
    (:data:`PROGRESS_LINE`) on to the progress stream, indented under the cell's line."""

    def __init__(self, stream: TextIO):
        self.stream, self._pending = stream, ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if PROGRESS_LINE.match(line.strip()):
                print(f"      {line.strip()}", file=self.stream, flush=True)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _progress_hook(path: Path, stream: TextIO, start: float) -> Callable[..., None]:
    """One line per executed cell, numbered like the source notebook (1-based)."""
    import nbformat

    cells = nbformat.read(str(path), as_version=4).cells
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    injected = tagged[0] + 1 if tagged else 0  # where papermill inserts its parameters cell

    def on_cell_execute(cell: Any, cell_index: int, **_: Any) -> None:
        if cell_index == injected:
            label, first = "params", "(injected parameters)"
        else:
            number = cell_index if cell_index > injected else cell_index + 1
            label = f"{number:>3}/{len(cells)}"
            first = next((s for s in cell.source.splitlines() if s.strip()), "")
            if len(first) > 70:
                first = first[:67] + "..."
        print(f"  [cell {label:>7} {time.perf_counter() - start:7.1f}s] {first}", file=stream, flush=True)

    return on_cell_execute


def _command_line(study: str, data_dir: Any, smoke: bool, out: Path, params: Mapping[str, Any]) -> str:
    """The ``kerasmt run`` command equivalent to a :func:`run_study` call (for the run record)."""
    import shlex

    parts = ["kerasmt", "run", study]
    if data_dir is not None:
        parts += ["--data", str(data_dir)]
    if smoke:
        parts.append("--smoke")
    parts += ["--out", str(out)]
    for name, value in params.items():
        parts += ["-p", f"{name}={json.dumps(value) if not isinstance(value, str) else value}"]
    return shlex.join(parts)


def run_study(
    study: str,
    *,
    data_dir: str | os.PathLike | None = None,
    smoke: bool = False,
    out_dir: str | os.PathLike | None = None,
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    log_output: bool = False,
    progress: TextIO | None = None,
    command: str | None = None,
) -> RunResult:
    """Execute ``notebooks/<study>.ipynb`` with papermill.

    Injected parameters: ``DATA_DIR`` (absolute path or None = synthetic), ``SMOKE``, ``OUT_DIR``
    (absolute; default ``$KERASMT_RUNS_DIR/<study>`` or ``./runs/<study>``) and ``parameters``.
    The kernel runs on ``sys.executable`` in the notebook's folder, with ``KERASMT_SMOKE=1`` when
    ``smoke``. ``timeout`` is papermill's per-cell execution timeout in seconds.

    Writes ``OUT/<study>.ipynb`` and ``OUT/<study>.html`` (also on failure). Raises
    :class:`NotebookFailed` when a cell raises, :class:`MissingMetricsError` when the notebook
    did not write ``OUT/metrics.json``. ``progress``: stream for one line per executed cell.
    """
    from kerasmt.utils import resolve_out_dir

    path = notebook_path(study)
    extra = dict(parameters or {})
    bad = [k for k in extra if k in RESERVED_PARAMETERS]
    if bad:
        raise UsageError(f"parameters {bad} are set by the runner (use data_dir/smoke/out_dir)")
    declared = notebook_parameters(path)
    if declared is not None:
        unknown = [k for k in extra if k not in declared]
        if unknown:
            import difflib

            close = {k: difflib.get_close_matches(k, declared, n=1) for k in unknown}
            hint = "; ".join(f"{k}: did you mean {m[0]}?" for k, m in close.items() if m)
            raise UsageError(
                f"-p {', '.join(unknown)}: not a parameter of {study} (the first cell of {path.name})."
                f"{' ' + hint if hint else ''}\n"
                f"{study}'s parameters: {', '.join(k for k in declared if k not in RESERVED_PARAMETERS)}"
                f"\n(DATA_DIR, SMOKE, OUT_DIR: use --data, --smoke, --out; `kerasmt list {study}` shows "
                f"their defaults and meaning)")
    if data_dir is not None:
        data_path = Path(data_dir).expanduser().resolve()
        if not data_path.exists():
            raise UsageError(f"--data {data_dir}: folder {data_path} does not exist")
        data_dir = str(data_path)
    out = resolve_out_dir(out_dir, study).resolve()
    from kerasmt import utils

    try:
        lock = utils.RunLock(out, purpose=f"kerasmt run {study}").acquire()
    except utils.RunFolderLocked as exc:
        raise RunnerError(str(exc)) from None
    try:
        return _run_in_locked_folder(study, path, declared, data_dir, smoke, out, extra, timeout, log_output,
                                     progress, command, str(lock.token))
    finally:
        lock.release()


def _run_in_locked_folder(study: str, path: Path, declared: list[str] | None, data_dir: str | None, smoke: bool,
                          out: Path, extra: dict[str, Any], timeout: float | None, log_output: bool,
                          progress: TextIO | None, command: str | None, lock_token: str) -> RunResult:
    """:func:`run_study` once its arguments are checked and its output folder is locked."""
    from kerasmt import utils

    out_nb, out_html, metrics_path = out / f"{study}.ipynb", out / f"{study}.html", out / METRICS_FILE
    if metrics_path.exists():  # stale file of a previous run must not pass for this run's output
        metrics_path.unlink()
    params: dict[str, Any] = {"DATA_DIR": data_dir, "SMOKE": bool(smoke), "OUT_DIR": str(out), **extra}

    import logging

    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    if declared is None:
        print(f"warning: {path.name} has no code cell tagged 'parameters'; papermill injects "
              f"the parameters at the top of the notebook", file=sys.stderr)
    else:
        unused = [k for k in RESERVED_PARAMETERS if k not in declared]
        if unused:
            print(f"warning: the parameters cell of {path.name} does not define {', '.join(unused)} "
                  f"(every study notebook should)", file=sys.stderr)

    pm_logger = logging.getLogger("papermill")
    noise = _PapermillNoise()
    noisy_loggers = [pm_logger, logging.getLogger("papermill.translators")]
    for lg in noisy_loggers:
        lg.addFilter(noise)
    saved_level = pm_logger.level
    handler = None
    if log_output:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        if progress is not None:  # our progress lines already number the cells
            handler.addFilter(lambda r: not r.getMessage().startswith(("Executing Cell", "Ending Cell")))
        pm_logger.addHandler(handler)
        pm_logger.setLevel(logging.INFO)

    explicit = [*(["DATA_DIR"] if data_dir is not None else []), *extra]
    tokens = [tok for tok in os.environ.get(utils.LOCK_TOKENS_ENV, "").split(",") if tok]
    kernel_env = {
        utils.EXPLICIT_ENV: json.dumps(explicit),
        utils.COMMAND_ENV: command or _command_line(study, data_dir, smoke, out, extra),
        utils.LOCK_TOKENS_ENV: ",".join([*tokens, lock_token]),
    }
    if declared is not None:
        kernel_env[utils.PARAMETER_NAMES_ENV] = json.dumps(declared)
    engine_kwargs: dict[str, Any] = {"kernel_manager_class": _kernel_manager_class(kernel_env)}
    start = time.perf_counter()
    if progress is not None:
        engine_kwargs["on_cell_execute"] = _progress_hook(path, progress, start)
        if not log_output:  # the whole output is streamed otherwise
            engine_kwargs["stdout_file"] = _ProgressLines(progress)
        print(f"running {study}: {path} -> {out}", file=progress, flush=True)
        print(f"  kernel: {KERNEL_NAME} on {sys.executable}", file=progress, flush=True)

    failure: NotebookFailed | None = None
    try:
        with _kernel_environment(smoke):
            pm.execute_notebook(
                str(path),
                str(out_nb),
                parameters=params,
                kernel_name=KERNEL_NAME,
                language="python",
                progress_bar=False,
                log_output=log_output,
                cwd=str(path.parent),
                execution_timeout=timeout,
                **engine_kwargs,
            )
    except PapermillExecutionError as exc:
        failure = NotebookFailed(
            study,
            ename=exc.ename,
            evalue=exc.evalue,
            cell_index=_source_cell_index(path, exc.source, exc.cell_index),
            exec_count=exc.exec_count,
            source=exc.source,
            traceback=exc.traceback,
        )
    except Exception as exc:  # dead kernel, timeout, kernel that cannot start, ...
        failure = NotebookFailed(study, ename=type(exc).__name__, evalue=str(exc).strip())
    finally:
        if handler is not None:
            pm_logger.removeHandler(handler)
        pm_logger.setLevel(saved_level)
        for lg in noisy_loggers:
            lg.removeFilter(noise)
    wall = time.perf_counter() - start

    html: Path | None = None
    if out_nb.exists():
        import nbformat

        nbformat.write(clean_executed_notebook(nbformat.read(str(out_nb), as_version=4)), str(out_nb))
        run = _read_run_record(metrics_path)
        if run is None:  # the notebook failed before saving its metrics: what the runner knows
            run = utils.run_record()
            run.update(command=kernel_env[utils.COMMAND_ENV], explicit_parameters=explicit, parameters=params)
        try:
            html = export_html(out_nb, out_html, run=run)
        except Exception as exc:  # a broken export must not hide the notebook's own error
            print(f"warning: HTML export of {out_nb} failed: {exc}", file=sys.stderr)
    if failure is not None:
        failure.notebook = out_nb if out_nb.exists() else None
        failure.html = html
        failure.args = (failure.describe(),)
        raise failure

    if not metrics_path.is_file():
        raise MissingMetricsError(
            f"notebook {path} ran without error but did not write {metrics_path}: every study "
            f"notebook must save its metrics with kerasmt.save_metrics(metrics, OUT_DIR)"
        )
    try:
        metrics = json.loads(metrics_path.read_text())
    except ValueError as exc:
        raise MissingMetricsError(f"{metrics_path}: not valid JSON ({exc})") from exc
    if not isinstance(metrics, dict):
        raise MissingMetricsError(f"{metrics_path}: expected a JSON object, found {type(metrics).__name__}")
    return RunResult(study, out, out_nb, html, metrics_path, metrics, wall, parameters=params)


# -------------------------------------------------------------------------------------- metrics
def _read_run_record(metrics_path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(metrics_path.read_text()).get("run")
    except (OSError, ValueError, AttributeError):
        return None
    return record if isinstance(record, dict) else None


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def headline(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers to show for a run: ``metrics["summary"]`` when it is a dict, else the
    top-level scalar entries."""
    summary = metrics.get("summary") if isinstance(metrics, Mapping) else None
    if isinstance(summary, Mapping):
        return {str(k): v for k, v in summary.items()}
    return {k: v for k, v in metrics.items() if _is_scalar(v)}


def format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return "nan" if not math.isfinite(value) else f"{value:.4g}"
    if isinstance(value, Mapping):
        return f"<{len(value)} entries>"
    if isinstance(value, (list, tuple)):
        return f"<list of {len(value)}>"
    return str(value)


def format_pairs(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in values.items())


def describe_metrics(metrics: Mapping[str, Any]) -> list[str]:
    """Lines describing metrics.json: the headline (``summary`` in full when the study has one),
    then one line per other top-level key (nested values summarised)."""
    summary = metrics.get("summary")
    lines = []
    if isinstance(summary, Mapping):
        lines.append("summary:")
        lines += [f"  {k} = {format_value(v)}" for k, v in summary.items()]
    for key, value in metrics.items():
        if key == "summary" and isinstance(value, Mapping):
            continue
        if key == "run" and isinstance(value, Mapping):  # the run record: one line
            git = value.get("git") or {}
            devices = value.get("devices") or {}
            lines.append(f"run: host={value.get('host')} devices={devices.get('device') or devices.get('cpu')} "
                         f"git={str(git.get('commit', ''))[:10] or None}{'+dirty' if git.get('dirty') else ''}")
            continue
        if isinstance(value, Mapping) and value and len(value) <= 8 and all(_is_scalar(v) for v in value.values()):
            lines.append(f"{key}: {format_pairs(value)}")
        else:
            lines.append(f"{key}: {format_value(value)}")
    return lines


def describe_result(result: RunResult) -> str:
    models = result.models
    lines = [
        f"{result.study}: ok in {result.wall_s:.1f} s",
        f"  executed notebook: {result.notebook}",
        f"  html report:       {result.html}",
        f"  metrics:           {result.metrics_path}",
        f"  models:            {result.out_dir / 'models'} ({len(models)} .keras file"
        f"{'' if len(models) == 1 else 's'})",
        "metrics (top-level keys of metrics.json):",
    ]
    lines += [f"  {line}" for line in describe_metrics(result.metrics)] or ["  (metrics.json is empty)"]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- demo
@dataclass
class DemoReport:
    out_dir: Path
    results: list[RunResult]
    summary_json: Path
    summary_md: Path

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


def _table_rows(results: Sequence[RunResult]) -> list[tuple[str, str, str, str]]:
    rows = []
    for r in results:
        info = format_pairs(headline(r.metrics)) if r.ok else (r.error or "").splitlines()[0][:120]
        rows.append((r.study, "ok" if r.ok else "FAILED", f"{r.wall_s:.1f}s", info))
    return rows


def format_summary_table(results: Sequence[RunResult]) -> str:
    header = ("study", "status", "time", "metrics")
    rows = [header, *_table_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        for row in rows
    ).rstrip()


def format_summary_markdown(results: Sequence[RunResult], smoke: bool, jobs: int = 1) -> str:
    together = (f" Up to {jobs} studies ran at the same time (their times overlap; "
                f"{', '.join(TIMED_STUDIES)} ran alone)." if jobs > 1 else "")
    lines = [
        "# kerasmt demo",
        "",
        f"Synthetic data{', smoke sizes' if smoke else ''}.{together}",
        "",
        "| study | status | time | metrics | report |",
        "|---|---|---|---|---|",
    ]
    for r, (study, status, wall, info) in zip(results, _table_rows(results)):
        report = f"[{r.html.name}]({r.study}/{r.html.name})" if r.html else ""
        info = info.replace("|", "\\|")
        lines.append(f"| {study} | {status} | {wall} | {info} | {report} |")
    return "\n".join(lines) + "\n"


class _PrefixedStream:
    """A text stream that writes whole lines, each prefixed (progress of concurrent studies)."""

    _lock = threading.Lock()

    def __init__(self, stream: TextIO, prefix: str):
        self.stream, self.prefix, self._pending = stream, prefix, ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        if lines:
            with self._lock:
                self.stream.write("".join(f"{self.prefix}{line}\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self.stream.flush()


def run_demo(
    out_dir: str | os.PathLike | None = None,
    studies: Sequence[str] | None = None,
    smoke: bool = False,
    timeout: float | None = None,
    progress: TextIO | None = None,
    jobs: int = 1,
) -> DemoReport:
    """Run ``studies`` (default: :func:`finished_studies`) on synthetic data, each into
    ``OUT/<study>`` (default OUT ``runs/demo``); a failing study does not stop the others.
    Writes ``OUT/summary.json`` and ``OUT/summary.md``.

    ``jobs > 1`` runs that many notebooks at the same time (each in its own kernel process: on a
    small CPU one training process leaves cores idle between steps), except
    :data:`TIMED_STUDIES`, which run alone afterwards; progress lines are then prefixed with the
    study's name. Results are listed in ``studies`` order either way."""
    if jobs < 1:
        raise UsageError(f"jobs must be >= 1, got {jobs}")
    out = Path(out_dir or Path("runs") / "demo").expanduser().resolve()
    if studies is None:
        studies = finished_studies()
        if not studies:
            raise UsageError(
                f"no finished study has a notebook in {notebooks_dir()} "
                f"(finished: {', '.join(FINISHED_STUDIES) or 'none'})"
            )
    else:
        for study in studies:
            notebook_path(study)  # unknown names fail before anything runs
    out.mkdir(parents=True, exist_ok=True)

    demo_start = time.perf_counter()
    done: list[str] = []
    done_lock = threading.Lock()

    def report(result: RunResult) -> RunResult:
        """One line per finished study: how many are done, the elapsed time, an estimate of the rest."""
        if progress is None:
            return result
        with done_lock:
            done.append(result.study)
            elapsed = time.perf_counter() - demo_start
            left = len(studies) - len(done)
            eta = f", about {elapsed / len(done) * left / 60:.1f} min left" if left else ""
            print(f"demo: {len(done)}/{len(studies)} studies done ({result.study} "
                  f"{'ok' if result.ok else 'FAILED'} in {result.wall_s:.0f} s; {elapsed / 60:.1f} min so far{eta})",
                  file=progress, flush=True)
        return result

    def one(study: str, stream: TextIO | None) -> RunResult:
        return report(_one(study, stream))

    def _one(study: str, stream: TextIO | None) -> RunResult:
        start = time.perf_counter()
        try:
            params = {} if smoke else DEMO_PARAMETERS.get(study, {})
            return run_study(study, smoke=smoke, out_dir=out / study, parameters=params,
                             timeout=timeout, progress=stream)
        except Exception as exc:  # noqa: BLE001 - the demo goes on with the next study
            if not isinstance(exc, RunnerError):
                exc = RunnerError(f"{type(exc).__name__}: {exc}")
            sub = out / study
            html = sub / f"{study}.html"
            if stream is not None:
                print(f"error: {exc}", file=stream, flush=True)
            return RunResult(
                study, sub, sub / f"{study}.ipynb", html if html.exists() else None,
                sub / METRICS_FILE, {}, time.perf_counter() - start, ok=False, error=str(exc),
            )

    together = [s for s in studies if s not in TIMED_STUDIES] if jobs > 1 else []
    together.sort(key=lambda s: -DEMO_SECONDS.get(s, 0.0))  # longest first; results keep `studies` order
    by_study: dict[str, RunResult] = {}
    # set the kernels' environment once: the per-study contexts then leave it as it is
    with _kernel_environment(smoke):
        if together:
            with ThreadPoolExecutor(min(jobs, len(together))) as pool:
                streams = [None if progress is None else _PrefixedStream(progress, f"{s}: ") for s in together]
                for study, result in zip(together, pool.map(one, together, streams)):
                    by_study[study] = result
        for study in studies:
            if study not in by_study:
                by_study[study] = one(study, progress)
    results = [by_study[s] for s in studies]
    from kerasmt.utils import atomic_write_text

    summary_json = atomic_write_text(out / "summary.json", json.dumps(
        {"smoke": bool(smoke), "jobs": int(jobs), "ok": all(r.ok for r in results),
         "studies": [r.to_json() for r in results]}, indent=2, default=str) + "\n")
    summary_md = atomic_write_text(out / "summary.md", format_summary_markdown(results, smoke, jobs))
    return DemoReport(out, results, summary_json, summary_md)


# ------------------------------------------------------------------------------------- datasets
def _dataset_module(study: str):
    from kerasmt import datasets

    try:
        return datasets.for_study(study)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def synthesize_kwargs(func: Callable[..., Any], n: int | None, seed: int | None) -> dict[str, Any]:
    """Map ``--n``/``--seed`` onto a ``synthesize`` signature: ``n`` if it has that parameter,
    else ``n_train``; ``seed``."""
    params = inspect.signature(func).parameters
    accepts_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs: dict[str, Any] = {}
    if n is not None:
        if "n" in params:
            kwargs["n"] = n
        elif "n_train" in params:
            kwargs["n_train"] = n
        else:
            raise UsageError(
                f"{func.__module__}.{func.__qualname__}{inspect.signature(func)} has no size "
                f"parameter (n or n_train): leave out --n"
            )
    if seed is not None:
        if "seed" not in params and not accepts_kwargs:
            raise UsageError(f"{func.__module__}.{func.__qualname__} takes no seed: leave out --seed")
        kwargs["seed"] = seed
    return kwargs


def synthesize_dataset(study: str, root: str | os.PathLike, n: int | None = None,
                       seed: int | None = None) -> tuple[Path, dict[str, Any]]:
    """``for_study(study).synthesize(root, **kw)``; returns (folder written, kwargs used)."""
    module = _dataset_module(study)
    kwargs = synthesize_kwargs(module.synthesize, n, seed)
    written = module.synthesize(root, **kwargs)
    return Path(written if written is not None else root), kwargs


def describe_folder(root: str | os.PathLike, max_entries: int = 12) -> str:
    """``N files, X MB`` plus the top-level entries (folders with their file counts)."""
    root = Path(root)
    files = [p for p in root.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    lines = [f"{len(files)} files, {size / 1e6:.2f} MB in {root}"]
    entries = sorted(root.iterdir()) if root.is_dir() else []
    for entry in entries[:max_entries]:
        if entry.is_dir():
            count = sum(1 for p in entry.rglob("*") if p.is_file())
            lines.append(f"  {entry.name}/  ({count} files)")
        else:
            lines.append(f"  {entry.name}  ({entry.stat().st_size} bytes)")
    if len(entries) > max_entries:
        lines.append(f"  ... and {len(entries) - max_entries} more entries")
    return "\n".join(lines)


def check_dataset(study: str, root: str | os.PathLike) -> list[str]:
    """Every finding of ``for_study(study).check(root)``: plain strings and
    :class:`kerasmt.datasets.base.Finding` objects that keep their level (error, warning, note;
    see :func:`kerasmt.datasets.base.errors` for which ones make the folder invalid)."""
    from kerasmt.datasets.base import Finding, level_of

    return [Finding(str(p), level_of(p)) for p in _dataset_module(study).check(root)]


def fetch_dataset(study: str, root: str | os.PathLike) -> Any:
    """``for_study(study).fetch(root)``; a study without a download raises :class:`UsageError`
    with the module's ``DOWNLOAD_HELP`` (or docstring) saying how to get the data."""
    module = _dataset_module(study)
    fetch = getattr(module, "fetch", None)
    if callable(fetch):
        return fetch(root)
    help_text = getattr(module, "DOWNLOAD_HELP", None) or inspect.getdoc(module) or ""
    message = (
        f"the {study} dataset cannot be downloaded by kerasmt ({module.__name__} has no fetch()); "
        f"get it yourself, then point --data at it and run `kerasmt data check {study} DIR`."
    )
    if help_text.strip():
        message += "\n\n" + help_text.strip()
    raise UsageError(message)
