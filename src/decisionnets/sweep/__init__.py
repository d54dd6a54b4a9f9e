"""Grids of runs on Dask distributed: SGD regimes, early-phase perturbations, pretraining.

spec -> plan -> execute on Dask -> summary, one module each:

- :mod:`~decisionnets.sweep.spec`: read and validate the sweep's TOML (:func:`load_spec`);
- :mod:`~decisionnets.sweep.plan`: one :class:`RunPoint` per (grid point, seed) with its run id,
  run directory and resolved config (:func:`plan`), grouped into ensembles;
- :mod:`~decisionnets.sweep.execute`: the Dask client and each run's life cycle (:func:`run_sweep`,
  :func:`run_point`, :func:`run_ensemble`);
- :mod:`~decisionnets.sweep.analysis`: each run is analysed by ``decisionnets analyze``'s
  :func:`decisionnets.report.analyze_run` with the ``[sweep.analysis]`` options, so its
  ``information.nc`` has the layout of ``decisionnets analyze``;
- :mod:`~decisionnets.sweep.summary` and :mod:`~decisionnets.sweep.figures`: the runs'
  information.nc files -> ``summary.nc``, ``summary.txt``, ``figures/``.

A *sweep spec* is a TOML file (or a preset in ``tasks/`` with a top-level ``[sweep]`` table)::

    description = "one line"

    [sweep]
    base = "color-direction-static"     # the preset every run starts from (or a config .toml path)
    seeds = [0, 1, 2, 3, 4]             # every point of the grid is run once per seed
    set = { "train.epochs" = 60 }       # overrides applied to every run (``--set`` keys, typed values)

    [sweep.grid]                        # product of plain config values; the dim is the key's last part
    "train.lr" = [0.01, 0.05]
    "train.batch_size" = [32, 512]

    [[sweep.axes.k]]                    # an axis whose points are tables (product with the grid)
    value = 0                           # the coordinate of this point along dim "k"
    [[sweep.axes.k]]
    value = 5
    phases = [{ epochs = 5, lr = 0.005, batch_size = 512 }]   # first 5 epochs in another regime
    # base = "...", set = {...}, init_from = "run dir or .pt",
    # pretrain = { set = {...}, epochs = 10 }   -> a pretraining run (same seed) whose final
    #                                              weights initialize this run (train.init_from)

    [sweep.analysis]                    # the options of `decisionnets analyze` for every run (AnalysisConfig)
    variables = ["color", "direction"]  # labels decoded ([]: analyze's defaults)
    layers = ["hidden"]                 # recorded layers decoded ([]: every one); the summary keeps one named alone
    decoder = "linear"                  # a family or a list (a `decoder` dim): linear, linear-raw, mlp,
                                        # sgd-mlp, sgd-linear (decisionnets.decoding)
    folds = 5
    epochs = []                         # decode only these recorded epochs ([]: all), e.g. for sgd-*
    epoch_stride = 1                    # decode every k-th of them (and the last): k x less decoding
    periods = ["decision"]              # time-resolved runs: decode these periods only (the sweep's default)
    time_stride = 1                     # decode every k-th time step
    dtype = "float32"                   # decoder precision
    figures = false                     # also draw each run's figures (the sweep's default: false)
    # every option: the user guide's table of analysis options (decisionnets.analysis_config)

The sweep directory ``OUT/NAME/`` holds ``runs/<run id>/`` (ordinary run directories: train,
record and analyse there), ``pretrain/`` (pretraining runs), ``summary.nc`` (one
:class:`xarray.Dataset` with the grid's parameters as dimensions), ``summary.txt`` and
``figures/``. Rerunning the same spec into the same ``OUT`` skips finished runs (nothing is
submitted for them), resumes interrupted ones from their last checkpoint
(``training.train(..., resume=True)``), leaves diverged ones as they are, and analyses again
(without retraining) the finished runs whose ``information.nc`` lacks what ``[sweep.analysis]``
now asks for (another decoder list, more variables; ``run_sweep(..., analysis={...})`` overrides
the spec's options). ``run_sweep(..., summary_only=True)`` only rebuilds the summary from the runs
as they are. A run that diverges or crashes is recorded (``status.json``: ``diverged`` /
``failed``) and the sweep goes on.

Execution is Dask distributed: a :class:`distributed.LocalCluster` sized to the machine (one
single-threaded worker process per core) by default, or an existing scheduler
(``--scheduler tcp://HOST:PORT``), e.g. one started on a SLURM cluster with dask-jobqueue::

    from dask_jobqueue import SLURMCluster
    cluster = SLURMCluster(cores=1, processes=1, memory="4GB", walltime="02:00:00")
    cluster.scale(jobs=20)
    print(cluster.scheduler_address)      # -> decisionnets sweep SPEC --scheduler tcp://...

Compatible fresh runs (FC nets that differ only in seed, lr, momentum or weight decay) are trained
together as ensembles (:mod:`decisionnets.ensemble`, one batched program per ensemble, each run in
its own run directory as before), split so that every worker gets one; ``run_sweep(...,
ensemble=False)`` (``--no-ensemble``) runs one run per task.

Workers must see the same file system as the client (the sweep directory) and have decisionnets
installed. A worker killed mid-run is replaced by Dask rescheduling the run on another worker,
which resumes it from the checkpoint.
"""

from decisionnets.sweep.analysis import analyze as analyze_point, analyze_kwargs, is_analyzed
from decisionnets.sweep.execute import check_same_config, is_done, run_ensemble, run_point, run_sweep
from decisionnets.sweep.figures import plot_final_vs, plot_information_vs_epoch, plot_summary
from decisionnets.sweep.plan import MAX_ENSEMBLE, RunPoint, ensemble_units, plan
from decisionnets.sweep.spec import ANALYSIS_DEFAULTS, SWEEP_ANALYSIS, SweepSpec, load_spec, parse_spec
from decisionnets.sweep.summary import describe, gather, peak_final, regimes, run_information


__all__ = ["run_sweep", "load_spec", "parse_spec", "plan", "run_point", "run_ensemble", "SweepSpec", "RunPoint",
           "ANALYSIS_DEFAULTS", "SWEEP_ANALYSIS", "MAX_ENSEMBLE", "gather", "describe", "peak_final", "regimes", "run_information",
           "plot_information_vs_epoch", "plot_final_vs", "plot_summary", "analyze_point", "analyze_kwargs",
           "is_analyzed", "is_done", "check_same_config", "ensemble_units"]
