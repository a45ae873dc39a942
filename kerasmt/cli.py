"""``kerasmt`` command line: run study notebooks headless, make and check datasets, run the demo.

    kerasmt run STUDY [--data DIR] [--smoke] [--out DIR] [-p NAME=VALUE ...] [--timeout S]
    kerasmt data synth|check|fetch STUDY DIR
    kerasmt demo [--out DIR] [--studies a,b] [--smoke]
    kerasmt list

Importing this module does not import TensorFlow (only the notebook kernels do).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from kerasmt import __version__

EPILOG_RUN = """\
parameters injected into the notebook's "parameters" cell:
  DATA_DIR  absolute path of --data, or None: the notebook writes/reuses a synthetic dataset
  SMOKE     True with --smoke (the kernel also gets KERASMT_SMOKE=1)
  OUT_DIR   absolute path of --out (default runs/STUDY, or $KERASMT_RUNS_DIR/STUDY)
  NAME      one per -p NAME=VALUE; VALUE is read as a Python/JSON literal when it is one
            (3, 1e-3, true, None, [64, 32], "'quoted'"), else kept as a string

outputs: OUT/STUDY.ipynb (executed notebook), OUT/STUDY.html (also on failure),
         OUT/metrics.json and OUT/models/*.keras (written by the notebook)

notebooks are looked up in $KERASMT_NOTEBOOKS, else in the notebooks/ folder of the checkout.
examples:
  kerasmt run fairface --smoke
  kerasmt run fairface --data ~/data/fairface -p EPOCHS=30 -p BACKBONE=resnet
"""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kerasmt",
        description="Run the kerasmt study notebooks headless and manage their datasets.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `kerasmt COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"kerasmt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="execute notebooks/STUDY.ipynb with papermill",
        description="Execute notebooks/STUDY.ipynb with papermill; write the executed notebook,\n"
        "an HTML report, metrics.json and the saved models under --out.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG_RUN,
    )
    run.add_argument("study", metavar="STUDY", help="notebook name without .ipynb (see `kerasmt list`)")
    run.add_argument("--data", metavar="DIR", help="dataset folder (default: synthetic data)")
    run.add_argument("--smoke", action="store_true", help="tiny sizes (as in CI); sets KERASMT_SMOKE=1")
    run.add_argument("--out", metavar="DIR", help="output folder (default: runs/STUDY)")
    run.add_argument(
        "-p", "--param", dest="params", action="append", default=[], metavar="NAME=VALUE",
        help="extra notebook parameter (repeatable)",
    )
    run.add_argument("--timeout", type=float, metavar="SECONDS",
                     help="per-cell execution timeout (default: none)")
    run.add_argument("--log-output", action="store_true",
                     help="stream the cells' outputs to stderr while they run")
    run.add_argument("-q", "--quiet", action="store_true", help="no per-cell progress lines")

    data = sub.add_parser(
        "data",
        help="synthesize, check or fetch a study's dataset",
        description="Dataset helpers; STUDY selects the dataset module (kerasmt.datasets.for_study).",
    )
    data.set_defaults(print_data_help=data.print_help)
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION")
    synth = dsub.add_parser(
        "synth", help="write a synthetic dataset in the real layout",
        description="Write a synthetic dataset in the real dataset's layout into DIR.",
    )
    synth.add_argument("study", metavar="STUDY")
    synth.add_argument("dir", metavar="DIR")
    synth.add_argument("--n", type=int, metavar="N",
                       help="number of examples (the module's n, or n_train, argument)")
    synth.add_argument("--seed", type=int, metavar="S", help="random seed")
    check = dsub.add_parser(
        "check", help="list every problem of a dataset folder",
        description="Check that DIR holds a valid STUDY dataset; prints every problem found "
        "and exits 1 if there is any.",
    )
    check.add_argument("study", metavar="STUDY")
    check.add_argument("dir", metavar="DIR")
    fetch = dsub.add_parser(
        "fetch", help="download the real dataset (where a public URL exists)",
        description="Download the real STUDY dataset into DIR where the dataset module can; "
        "otherwise explain how to get it.",
    )
    fetch.add_argument("study", metavar="STUDY")
    fetch.add_argument("dir", metavar="DIR")

    demo = sub.add_parser(
        "demo",
        help="run every finished study on synthetic data and summarise",
        description="Run every finished study on synthetic data, each into OUT/STUDY, then print "
        "a summary table and write OUT/summary.json and OUT/summary.md. A failing study does not "
        "stop the others; the exit code is 1 if any failed.",
    )
    demo.add_argument("--out", metavar="DIR", help="output folder (default: runs/demo)")
    demo.add_argument("--studies", metavar="A,B", help="comma-separated studies (default: all finished)")
    demo.add_argument("--smoke", action="store_true", help="tiny sizes (as in CI)")
    demo.add_argument("--timeout", type=float, metavar="SECONDS", help="per-cell execution timeout")
    demo.add_argument("-q", "--quiet", action="store_true", help="no per-cell progress lines")

    sub.add_parser("list", help="list the study notebooks",
                   description="List the study notebooks found and which are finished.")
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from kerasmt import runner

    params = runner.parse_parameters(args.params)
    result = runner.run_study(
        args.study,
        data_dir=args.data,
        smoke=args.smoke,
        out_dir=args.out,
        parameters=params,
        timeout=args.timeout,
        log_output=args.log_output,
        progress=None if args.quiet else sys.stderr,
    )
    print(runner.describe_result(result))
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from kerasmt import runner

    if args.data_command == "synth":
        folder, kwargs = runner.synthesize_dataset(args.study, args.dir, n=args.n, seed=args.seed)
        used = ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "module defaults"
        print(f"wrote a synthetic {args.study} dataset ({used}):")
        print(runner.describe_folder(folder))
        return 0
    if args.data_command == "check":
        problems = runner.check_dataset(args.study, args.dir)
        if problems:
            print(f"{args.dir} is not a valid {args.study} dataset: {len(problems)} problem"
                  f"{'' if len(problems) == 1 else 's'}")
            width = len(str(len(problems)))
            for i, problem in enumerate(problems, 1):
                print(f"{i:>{width}}. {problem}")
            return 1
        print(f"OK: {args.dir} is a valid {args.study} dataset")
        return 0
    if args.data_command == "fetch":
        written = runner.fetch_dataset(args.study, args.dir)
        print(f"fetched the {args.study} dataset into {written if written is not None else args.dir}")
        return 0
    args.print_data_help(sys.stderr)
    return 2


def _cmd_demo(args: argparse.Namespace) -> int:
    from kerasmt import runner

    studies = [s.strip() for s in args.studies.split(",") if s.strip()] if args.studies else None
    report = runner.run_demo(
        out_dir=args.out, studies=studies, smoke=args.smoke, timeout=args.timeout,
        progress=None if args.quiet else sys.stderr,
    )
    print(runner.format_summary_table(report.results))
    print(f"\nsummary: {report.summary_md} and {report.summary_json}")
    failed = [r.study for r in report.results if not r.ok]
    if failed:
        print(f"FAILED: {', '.join(failed)} (see the errors above and the html reports)", file=sys.stderr)
        return 1
    return 0


def _cmd_list() -> int:
    from kerasmt import runner

    folder = runner.notebooks_dir()
    studies = runner.available_studies(folder)
    print(f"notebooks in {folder}:")
    for study in studies:
        mark = "finished" if study in runner.FINISHED_STUDIES else ""
        print(f"  {study:<20} {mark}".rstrip())
    if not studies:
        print("  (none)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kerasmt`` console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from kerasmt.runner import RunnerError

    try:
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "data":
            try:
                return _cmd_data(args)
            except (ValueError, OSError) as exc:  # DatasetError is a ValueError
                print(f"error: {exc}", file=sys.stderr)
                return 1
        if args.command == "demo":
            return _cmd_demo(args)
        if args.command == "list":
            return _cmd_list()
    except RunnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
