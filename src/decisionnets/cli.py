"""The ``decisionnets`` command line.

::

    decisionnets tasks
    decisionnets train --task NAME [--config FILE] [--set key=value ...] [--seed N] [--out DIR]
                       [--device cpu|cuda] [--resume RUN_DIR] [--no-progress] [--threads N]
    decisionnets analyze RUN_DIR [--variables ...] [--decoder NAME [NAME ...]] [--epochs E ...] [--folds K] [--device cpu|cuda]
                         [--analyses information selectivity geometry similarity fixed-points]
                         [--time-stride K] [--dtype float32|float64] [--out DIR] [--bins VAR=K ...]
                         (one flag per option of decisionnets.analysis_config.AnalysisConfig)
    decisionnets demo [--out DIR]          train the color-direction demo, then analyze it
    decisionnets rollout RUN_DIR [--env NAME] [--trials N] [--seed S] [--policy greedy|sample]
                         [--align onset|response] [--out FILE]     closed-loop behaviour -> rollout.nc
    decisionnets sweep SPEC.toml [--scheduler tcp://HOST:PORT] [--analysis key=value ...]
                       [--summary-only] [--summary-to DIR]

Exit codes: 0 success; 2 bad input (unknown task, key or value, unreadable
or corrupt file or checkpoint, a run directory in use by another process, an
output folder that cannot be written), printed as one line without a
traceback; 3 training diverged (NaN/inf loss, or a loss past its bound; recorded epochs are kept); 4 a
write failed (disk full, I/O error, permission; resumable); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from decisionnets.errors import EXIT_DIVERGED, EXIT_USAGE, EXIT_WRITE, TrainingDiverged, UserError, WriteFailed


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line (its default also exits 2, but prints the usage block)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"decisionnets: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="decisionnets", description="Train networks on decision-making tasks and measure "
                "the usable information in their representations over training.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("tasks", help="list the presets")

    t = sub.add_parser("train", help="train a preset; prints the run directory last")
    t.add_argument("--task", help="preset name (see `decisionnets tasks`)")
    t.add_argument("--config", help="TOML file with the preset schema (base = \"preset\" to modify one)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    t.add_argument("--seed", type=int, help="the run's single seed")
    t.add_argument("--out", default="runs", help="parent folder for the run directory (default: runs)")
    t.add_argument("--run-dir", help="exact run directory (default: OUT/TASK_seedN_TIMESTAMP)")
    t.add_argument("--device", choices=("cpu", "cuda"))
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run from its last checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    _threads_arg(t)
    t.add_argument("--force", action="store_true",
                   help="take over a run directory lock held by a process on another host (if it no longer runs)")

    a = sub.add_parser("analyze", help="usable information + figures for a run directory",
                       description="Usable information + figures for a run directory. An option not given takes "
                                   "the value of the run's [analysis] table (its preset's), else the default shown.")
    _analyze_args(a)

    d = sub.add_parser("demo", help="train the color-direction demo and analyze it (what `make run` does)")
    d.add_argument("--out", default="runs")
    d.add_argument("--task", default="color-direction", help="the time-resolved run (default: color-direction)")
    d.add_argument("--static-task", default="color-direction-static-wd",
                   help="the FC run whose color is discarded (default: color-direction-static-wd)")
    d.add_argument("--seed", type=int, default=0)
    _threads_arg(d)

    r = sub.add_parser("rollout", help="run a trained recurrent net in closed loop; writes rollout.nc + figures")
    r.add_argument("run_dir")
    r.add_argument("--env", help="env to act in (default: the run's), e.g. ColorDirectionRT")
    r.add_argument("--trials", type=int, default=1008)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--policy", choices=("greedy", "sample"), default="greedy")
    r.add_argument("--align", choices=("onset", "response"), default="onset")
    r.add_argument("--out", help="output file (default: RUN_DIR/rollout.nc)")

    s = sub.add_parser("sweep", help="run a grid of runs on Dask (local cluster by default)")
    s.add_argument("spec", help="sweep spec: a TOML file or a sweep preset name")
    s.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://host:8786")
    s.add_argument("--out", default="sweeps", help="parent folder for the sweep directory")
    s.add_argument("--workers", type=int, help="LocalCluster workers (default: one per core)")
    s.add_argument("--no-analyze", action="store_true", help="train only")
    s.add_argument("--no-ensemble", action="store_true",
                   help="one run per Dask task (default: compatible FC runs trained together as ensembles)")
    s.add_argument("--force", action="store_true",
                   help="take over sweep and run locks held by processes on other hosts (if they no longer run)")
    s.add_argument("--analysis", action="append", default=[], metavar="KEY=VALUE",
                   help="override a [sweep.analysis] option (value as TOML), e.g. --analysis 'decoder=[\"linear\", "
                        "\"mlp\"]'; finished runs lacking it are analysed again, not retrained")
    s.add_argument("--summary-only", action="store_true",
                   help="train and analyse nothing: rebuild summary.nc, summary.txt and figures from the runs as they are")
    s.add_argument("--summary-to", metavar="DIR", help="write the summary files here instead of the sweep directory")
    return p


def _analyze_args(a):
    from decisionnets.analysis_config import add_cli_arguments

    a.add_argument("run_dir")
    add_cli_arguments(a)  # one flag per AnalysisConfig option (--folds, --decoder, --time-stride, ...)
    a.add_argument("--no-progress", action="store_true")
    a.add_argument("--out", metavar="DIR", help="write information.nc and figures/ here (default: the run directory)")
    _threads_arg(a)


def _threads_arg(p):
    p.add_argument("--threads", metavar="N", help="torch intra-op threads (default: env DECISIONNETS_THREADS, "
                   "else 1 for RNN/FC training, the available CPUs for CNNs, the idle ones "
                   "for decoding)")


def _cmd_tasks(args) -> int:
    from decisionnets.config import preset_names, read_preset

    for kind in ("task", "sweep"):
        names = preset_names(kind)
        if kind == "sweep" and names:
            print("\nsweeps (decisionnets sweep NAME):")
        width = max((len(n) for n in names), default=0)
        for name in names:
            print(f"  {name:<{width}}  {read_preset(name).get('description', '')}")
    return 0


def _default_run_dir(out, task, seed) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(out) / f"{task}_seed{seed}_{stamp}"
    path, k = base, 1
    while path.exists():
        path, k = Path(f"{base}-{k}"), k + 1
    return path


def check_new_dir(path: Path, what: str) -> None:
    """Refuse (:class:`UserError`) a folder to write into whose name is not valid UTF-8 (netCDF and JSON
    store it as text) or that is, or lies under, an existing file."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{what} {str(path).encode('utf-8', 'surrogateescape')!r} is not a valid UTF-8 name "
                        "(the run stores its path as text); choose another name") from None
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise UserError(f"{what} {path}: {p} is a file, not a folder; choose another path")
            break


def check_device(device: str | None) -> None:
    """Refuse ``cuda`` when torch sees no CUDA GPU (before any work or file)."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda asked for, but torch sees no CUDA GPU; use --device cpu")


def _cmd_train(args) -> int:
    from decisionnets.config import load_config
    from decisionnets.threads import job_for_model, use_threads
    from decisionnets.locks import LOCK_NAME
    from decisionnets.rundir import resume_config
    from decisionnets.training import train

    if args.resume:
        if args.task or args.config or args.set or args.seed is not None:
            raise UserError("--resume RUN_DIR takes the run's own config; do not combine it with "
                            "--task/--config/--set/--seed")
        cfg = resume_config(args.resume)
        run_dir = Path(args.resume)
    else:
        cfg = load_config(args.task, args.config, args.set, seed=args.seed, device=args.device)
        run_dir = Path(args.run_dir) if args.run_dir else _default_run_dir(args.out, cfg.task, cfg.seed)
        check_new_dir(run_dir, "run directory")
        if run_dir.exists() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
            raise UserError(f"run directory {run_dir} is not empty; use --resume {run_dir} to continue it "
                            "or choose another --run-dir")
    use_threads(job_for_model(cfg.model["kind"]), args.threads)
    try:
        train(cfg, run_dir, progress=not args.no_progress, resume=bool(args.resume), force=args.force)
    finally:
        sys.stderr.flush()
    print(run_dir)
    return 0


def _cmd_analyze(args) -> int:
    from decisionnets.analysis_config import AnalysisConfig
    from decisionnets.report import analyze_run, run_analysis_config
    from decisionnets.threads import use_threads

    # the run's [analysis] table, then the flags given (an absent flag is None: the table's value)
    config = AnalysisConfig.from_cli(args, base=run_analysis_config(args.run_dir))  # checked before any work
    check_device(config.device)
    use_threads("decode", args.threads)
    paths = analyze_run(args.run_dir, config, progress=not args.no_progress, out=args.out)
    for p in paths:
        print(p)
    return 0


def _say(msg: str) -> None:
    """A progress line of the demo, on stdout, flushed (so `make run` shows it as it happens)."""
    print(msg, flush=True)


def _cmd_demo(args) -> int:
    from decisionnets.config import load_config
    from decisionnets.report import analyze_run, demo_figure, load_information, make_figures
    from decisionnets.threads import job_for_model, use_threads
    from decisionnets.training import train

    runs = []
    timings = []
    t_start = time.perf_counter()
    # each run is analysed as its preset's [analysis] table says (the FC run: its labels, every 3rd of its
    # 61 epochs and the last); the RNN: every 2nd of its 18 recorded steps (80 ms apart), the last kept
    jobs = ((args.task, {"time_stride": 2}), (args.static_task, {}))
    for i, (task, options) in enumerate(jobs, 1):
        cfg = load_config(task, seed=args.seed)
        run_dir = _default_run_dir(args.out, cfg.task, cfg.seed)
        t0 = time.perf_counter()
        use_threads(job_for_model(cfg.model["kind"]), args.threads)
        _say(f"[{i}/{len(jobs)}] {cfg.task}: training {cfg.model['kind']} for {cfg.train.epochs} epochs -> {run_dir}")
        train(cfg, run_dir)
        t1 = time.perf_counter()
        _say(f"[{i}/{len(jobs)}] {cfg.task}: trained in {t1 - t0:.0f} s; decoding its recorded layers")
        use_threads("decode", args.threads)
        paths = analyze_run(run_dir, figures=False, **options)
        t2 = time.perf_counter()
        _say(f"[{i}/{len(jobs)}] {cfg.task}: analyzed in {t2 - t1:.0f} s; drawing its figures")
        paths += make_figures(load_information(run_dir), run_dir / "figures")
        t3 = time.perf_counter()
        timings.append((cfg.task, t1 - t0, t2 - t1, t3 - t2))
        _say(f"[{i}/{len(jobs)}] {cfg.task}: trained in {t1 - t0:.0f} s, analyzed in {t2 - t1:.0f} s, "
             f"figures in {t3 - t2:.0f} s")
        print("figures:")
        for p in paths:
            print(f"  {p}")
        print(f"activations: {run_dir / 'activations'}  (decisionnets.open_activations({str(run_dir)!r}))")
        runs.append(run_dir)
    t4 = time.perf_counter()
    fig = demo_figure([runs[1], runs[0]], runs[1] / "figures" / "demo_information_vs_epoch.png")
    t5 = time.perf_counter()
    print(f"the demo's figure (color discarded, direction kept in the FC net with weight decay; the RNN beside it): {fig}")
    for r in runs:
        print(r)
    width = max(len(t[0]) for t in timings)
    _say("time taken (s):")
    _say(f"  {'run':<{width}}  {'train':>6}  {'analyze':>7}  {'figures':>7}")
    for name, tr, an, fi in timings:
        _say(f"  {name:<{width}}  {tr:6.0f}  {an:7.0f}  {fi:7.0f}")
    _say(f"  the demo figure {t5 - t4:.0f} s; total {t5 - t_start:.0f} s (after the install)")
    return 0


def _cmd_rollout(args) -> int:
    from decisionnets.agents.rollout import rollout_run

    if args.trials < 1:
        raise UserError(f"--trials must be >= 1; got {args.trials}")
    paths, summary = rollout_run(args.run_dir, env=args.env, n_trials=args.trials, seed=args.seed,
                                 policy=args.policy, align=args.align, out=args.out)
    print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))
    for p in paths:
        print(p)
    return 0


def _cmd_sweep(args) -> int:
    from decisionnets.sweep import run_sweep

    from decisionnets.config import parse_value

    analysis = {}
    for a in args.analysis:
        if "=" not in a:
            raise UserError(f"--analysis takes key=value; got {a!r}")
        key, _, text = a.partition("=")
        analysis[key.strip()] = parse_value(text.strip())
    summary = run_sweep(args.spec, out=args.out, scheduler=args.scheduler, n_workers=args.workers,
                        analyze=not args.no_analyze, ensemble=not args.no_ensemble, force=args.force,
                        analysis=analysis, summary_only=args.summary_only, summary_dir=args.summary_to)
    print(summary)
    return 0


COMMANDS = {"tasks": _cmd_tasks, "train": _cmd_train, "analyze": _cmd_analyze, "demo": _cmd_demo,
            "sweep": _cmd_sweep, "rollout": _cmd_rollout}


def main(argv=None) -> int:
    """Entry point of the ``decisionnets`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as e:
        print(f"decisionnets: error: {e}", file=sys.stderr)
        return e.exit_code
    except TrainingDiverged as e:
        print(f"decisionnets: {e}; recorded epochs are kept (status.json says diverged)", file=sys.stderr)
        return EXIT_DIVERGED
    except WriteFailed as e:
        print(f"decisionnets: {e}", file=sys.stderr)
        return EXIT_WRITE
    except KeyboardInterrupt:
        print("decisionnets: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
