"""``kerasmt`` command line: run study notebooks headless, make and check datasets, run the demo.

    kerasmt run STUDY [--data DIR] [--smoke] [--out DIR] [-p NAME=VALUE ...] [--timeout S]
    kerasmt data synth|check|fetch STUDY DIR
    kerasmt demo [--out DIR] [--studies a,b] [--smoke] [--jobs N]
    kerasmt tune STUDY --role chief|worker --oracle HOST:PORT [--tuner-id ID] [--trials N] [--out DIR]
    kerasmt tune STUDY --local-workers N [--worker-gpus 0,1] [--trials N] [--out DIR]
    kerasmt predict MODEL.keras IMAGE_OR_FOLDER... [--out DIR]
    kerasmt list

Importing this module does not import TensorFlow (only the notebook kernels do).
"""
from __future__ import annotations

import argparse
import os
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

an unknown -p NAME is an error; `kerasmt list STUDY` prints a study's parameters.
with --smoke, the notebook's smoke sizes apply except to the names given with -p.
notebooks are looked up in $KERASMT_NOTEBOOKS, else in the installed package (kerasmt/notebooks),
else in the notebooks/ folder of the checkout.
examples:
  kerasmt run fairface --smoke
  kerasmt run fairface --data ~/data/fairface -p EPOCHS=30 -p PATIENCE=5
  kerasmt run fairface -p STRATEGY=mirrored          # every GPU of this machine
  # several machines: on each, TF_CONFIG lists them all and gives this machine's task index
  TF_CONFIG='{"cluster": {"worker": ["h1:12345", "h2:12345"]}, "task": {"type": "worker", "index": 0}}' kerasmt run fairface -p STRATEGY=multi_worker
"""

EPILOG_TUNE = """\
keras-tuner's distributed mode: the chief (tuner id containing "chief") serves the oracle at
--oracle and records the trials under OUT/tuning/<project>; each worker (unique tuner id) asks
it for trials and trains them. Start the chief first, then the workers (they wait for it).

STUDY: utkface (the report's Model A search) or package.module:function (a search function
taking a kerasmt.distributed_tuning.TuneRequest).

examples:
  # one machine, 4 GPUs: a chief and 4 workers, one GPU each
  kerasmt tune utkface --data ~/data/UTKFace --local-workers 4 --worker-gpus 0,1,2,3 --out runs/utk
  # several machines (OUT on each; the chief's OUT holds the trial records)
  kerasmt tune utkface --data ~/data/UTKFace --role chief --oracle 10.0.0.1:8000 --out runs/utk
  kerasmt tune utkface --data ~/data/UTKFace --role worker --oracle 10.0.0.1:8000 --tuner-id worker-a --out runs/utk
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
    synth.add_argument("--real", action="store_true",
                       help="real dataset size and image size, quickly (fairface, utkface, beauty, fashion): "
                            "N is then the total number of images (default: the real count); a few "
                            "hundred images are drawn and the rest are byte copies (for scale benchmarks)")
    check = dsub.add_parser(
        "check", help="list every problem of a dataset folder",
        description="Check that DIR holds a valid STUDY dataset; prints every problem found "
        "and exits 1 if there is an error. Warnings (what the reader handles with a counted "
        "warning, such as UTKFace's malformed names) and notes do not fail the check unless --strict.",
    )
    check.add_argument("study", metavar="STUDY")
    check.add_argument("dir", metavar="DIR")
    check.add_argument("--strict", action="store_true", help="warnings are errors too (exit 1)")
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
    demo.add_argument("--jobs", type=int, default=1, metavar="N",
                      help="notebooks run at the same time (default 1; the timed fashion study runs alone)")
    demo.add_argument("--timeout", type=float, metavar="SECONDS", help="per-cell execution timeout")
    demo.add_argument("-q", "--quiet", action="store_true", help="no per-cell progress lines")

    tune = sub.add_parser(
        "tune",
        help="distributed keras-tuner search: chief oracle and workers",
        description="Run a study's keras-tuner search in keras-tuner's distributed mode, as the chief "
        "or a worker (--role), or as a chief plus N workers on this machine (--local-workers).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG_TUNE,
    )
    tune.add_argument("study", metavar="STUDY", help="utkface, or package.module:function")
    mode = tune.add_mutually_exclusive_group(required=True)
    mode.add_argument("--role", choices=("chief", "worker"), help="run this process as the chief or a worker")
    mode.add_argument("--local-workers", type=int, metavar="N",
                      help="start a chief and N workers on 127.0.0.1 and wait for them")
    tune.add_argument("--oracle", metavar="HOST:PORT",
                      help="the chief's address (required with --role; default with --local-workers: "
                      "127.0.0.1 and a free port)")
    tune.add_argument("--tuner-id", metavar="ID",
                      help="this process's tuner id (chief: must contain 'chief', default 'chief'; "
                      "worker: unique, default worker-HOST-PID)")
    tune.add_argument("--trials", type=int, metavar="N", help="number of trials (default: the study's)")
    tune.add_argument("--algorithm", metavar="NAME", help="search algorithm (utkface: configs, grid, random, bayesian)")
    tune.add_argument("--epochs", type=int, metavar="N", help="epoch cap per trial (default: the study's)")
    tune.add_argument("--data", metavar="DIR", help="dataset folder (default: synthetic data)")
    tune.add_argument("--smoke", action="store_true", help="tiny sizes (as in CI)")
    tune.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    tune.add_argument("--out", metavar="DIR", help="output folder (default: runs/STUDY)")
    tune.add_argument("--worker-gpus", metavar="IDS",
                      help="with --local-workers: comma-separated GPU ids, one per worker round-robin "
                      "(CUDA_VISIBLE_DEVICES)")
    tune.add_argument("--timeout", type=float, metavar="SECONDS",
                      help="with --local-workers: stop everything after this many seconds")
    tune.add_argument("-v", "--verbose", type=int, default=0, metavar="N", help="Keras verbosity of the trials")

    rec = sub.add_parser(
        "recommend", help="movie recommendations from a saved recommender",
        description="Recommend movies with a recommender saved by the recommender study "
        "(<out>/models/recommender_gmm.joblib): for a user of its training data (--user) or a new "
        "user given a few ratings (--rate MOVIE=RATING, MOVIE a movie id or title). Loads a pickle: "
        "use only model files you trust.",
    )
    rec.add_argument("model", metavar="MODEL", help="a .joblib file written by kerasmt.recommend.save_model")
    who = rec.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", type=int, metavar="ID", help="a userId of the training ratings")
    who.add_argument("--rate", action="append", metavar="MOVIE=RATING",
                     help="a new user's rating (repeatable), e.g. --rate 1=5 --rate 'Heat (1995)=4'")
    rec.add_argument("--n", type=int, default=10, metavar="N", help="number of movies (default 10)")
    rec.add_argument("--soft", action="store_true", help="GMM: mix the clusters' lists by probability")
    rec.add_argument("--temperature", type=float, default=1.0, metavar="T",
                     help="GMM with --soft: posterior temperature (default 1; >1 mixes more)")

    predict = sub.add_parser(
        "predict", help="apply a saved model to photos: one row per image",
        description="Apply a raw-image model a study saved (models/<name>.predict.keras, or a Mask R-CNN "
        "model) to image files or folders; prints one row per image with each task's label and "
        "probability and, with --out, writes DIR/predictions.csv plus mask PNGs (and Mask R-CNN JSON "
        "and overlays).",
    )
    predict.add_argument("model", metavar="MODEL.keras")
    predict.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER")
    predict.add_argument("--out", metavar="DIR", help="write predictions.csv and mask/overlay images here")

    lst = sub.add_parser("list", help="list the study notebooks, or one study's parameters",
                         description="List the study notebooks found and which are finished; with STUDY, "
                         "print that study's parameters cell (the names -p accepts, defaults and meaning).")
    lst.add_argument("study", metavar="STUDY", nargs="?", help="show this study's parameters")
    return parser


def _cmd_recommend(args: argparse.Namespace) -> int:
    from kerasmt import recommend

    model = recommend.load_model(args.model)
    ratings = None if args.rate is None else recommend.parse_ratings(args.rate, model)
    table = recommend.recommend_titles(model, user=args.user, ratings=ratings, n=args.n,
                                       soft=args.soft, temperature=args.temperature)
    who = f"user {args.user}" if args.user is not None else f"new user ({len(ratings)} ratings)"
    if "cluster" in table.attrs:
        proba = table.attrs["proba"]
        who += (f": cluster {table.attrs['cluster']} (P = {proba[table.attrs['cluster']]:.2f}; "
                f"all: {' '.join(f'{p:.2f}' for p in proba)})")
    print(f"{type(model).__name__}, {who}")
    for rank, movie, title in table[["rank", "movieId", "title"]].itertuples(index=False):
        print(f"{rank:>3}. {title} (movieId {movie})")
    return 0


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

    if args.data_command == "synth" and getattr(args, "real", False):
        from kerasmt import scale

        if args.study not in scale.REAL:
            raise runner.UsageError(f"--real knows the studies {sorted(scale.REAL)}, not {args.study!r}")
        folder = scale.synthesize_real(args.study, args.dir, n=args.n, seed=args.seed or 0)
        real = scale.REAL[args.study]
        print(f"wrote a real-size synthetic {args.study} dataset ({args.n or real.images} images, {real.file_size}):")
        print(runner.describe_folder(folder))
        return 0
    if args.data_command == "synth":
        folder, kwargs = runner.synthesize_dataset(args.study, args.dir, n=args.n, seed=args.seed)
        used = ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "module defaults"
        print(f"wrote a synthetic {args.study} dataset ({used}):")
        print(runner.describe_folder(folder))
        return 0
    if args.data_command == "check":
        from kerasmt.datasets.base import errors, level_of

        findings = runner.check_dataset(args.study, args.dir)
        failing = errors(findings, strict=args.strict)
        counts = {level: sum(level_of(f) == level for f in findings) for level in ("error", "warning")}
        if failing:
            warned = 0 if args.strict else counts["warning"]  # with --strict they are among the errors
            print(f"{args.dir} is not a valid {args.study} dataset: {len(failing)} error"
                  f"{'' if len(failing) == 1 else 's'}"
                  + (f" and {warned} warning{'' if warned == 1 else 's'}" if warned else "")
                  + (" (warnings count as errors with --strict)" if args.strict and counts["warning"] else ""))
        elif counts["warning"]:
            print(f"OK with {counts['warning']} warning{'' if counts['warning'] == 1 else 's'}: {args.dir} is a "
                  f"valid {args.study} dataset (--strict would refuse it)")
        else:
            print(f"OK: {args.dir} is a valid {args.study} dataset")
        width = len(str(len(findings)))
        for i, finding in enumerate(findings, 1):
            level = level_of(finding)
            shown = "error" if level == "warning" and args.strict else level
            print(f"{i:>{width}}. {shown}: {finding}")
        return 1 if failing else 0
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
        progress=None if args.quiet else sys.stderr, jobs=args.jobs,
    )
    print(runner.format_summary_table(report.results))
    print(f"\nsummary: {report.summary_md} and {report.summary_json}")
    failed = [r.study for r in report.results if not r.ok]
    if failed:
        print(f"FAILED: {', '.join(failed)} (see the errors above and the html reports)", file=sys.stderr)
        return 1
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from kerasmt.prediction import predict

    table = predict(args.model, args.images, out_dir=args.out)
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_colwidth", 60):
        print(table.to_string(index=False))
    if args.out:
        path = os.path.join(args.out, "predictions.csv")
        os.makedirs(args.out, exist_ok=True)
        table.to_csv(path, index=False)
        print(f"\nwrote {path}")
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from kerasmt import distributed_tuning as dt
    from kerasmt.utils import resolve_out_dir

    study_label = args.study.split(":")[-1]
    out = resolve_out_dir(args.out, study_label)
    if args.local_workers is not None:
        gpus = [g.strip() for g in args.worker_gpus.split(",") if g.strip()] if args.worker_gpus else None
        result = dt.launch_local(
            args.study, args.local_workers, out, trials=args.trials, data_dir=args.data, smoke=args.smoke,
            seed=args.seed, algorithm=args.algorithm, epochs=args.epochs, oracle=args.oracle, worker_gpus=gpus,
            timeout=args.timeout, progress=sys.stderr,
        )
        trials = result.trials
        print(f"{len(trials)} trials recorded in {result.project_dir} ({result.seconds:.0f} s)")
        if len(trials):
            print(trials.to_string(index=False))
        return 0
    if args.worker_gpus or args.timeout:
        raise dt.TuneError("--worker-gpus and --timeout go with --local-workers, not with --role")
    if not args.oracle:
        raise dt.TuneError("--role needs --oracle HOST:PORT (the chief's address)")
    tuner = dt.run_role(
        args.study, args.role, args.oracle, out, tuner_id=args.tuner_id, trials=args.trials, data_dir=args.data,
        smoke=args.smoke, seed=args.seed, algorithm=args.algorithm, epochs=args.epochs, verbose=args.verbose,
    )
    if args.role == "chief":
        table = dt.trials_table(tuner)
        print(f"{len(table)} trials recorded in {tuner.project_dir}")
        if len(table):
            print(table.to_string())
    else:
        print(f"worker {os.environ.get(dt.ENV_TUNER_ID)} finished: the oracle has no trials left")
    return 0


def _cmd_list(study: str | None = None) -> int:
    from kerasmt import runner

    if study:
        source = runner.parameters_cell(runner.notebook_path(study))
        if source is None:
            print(f"{study}: its notebook has no cell tagged 'parameters'")
            return 1
        print(f"parameters of {study} (set with -p NAME=VALUE; DATA_DIR, SMOKE, OUT_DIR with --data, --smoke, --out):")
        print(source)
        return 0

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
            return _cmd_list(args.study)
        if args.command == "recommend":
            try:
                return _cmd_recommend(args)
            except (ValueError, OSError, KeyError, TypeError) as exc:  # unknown user is a KeyError
                print(f"error: {exc}", file=sys.stderr)
                return 1
        if args.command == "predict":
            from kerasmt.prediction import PredictError

            try:
                return _cmd_predict(args)
            except PredictError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        if args.command == "tune":
            from kerasmt.distributed_tuning import TuneError

            try:
                return _cmd_tune(args)
            except TuneError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            except RuntimeError as exc:  # a local chief or worker failed or timed out
                print(f"error: {exc}", file=sys.stderr)
                return 1
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
