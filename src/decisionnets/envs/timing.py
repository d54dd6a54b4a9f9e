"""Period durations of a trial: the one parser of ``timing`` dicts, for every env.

A period's duration is written as neurogym writes it:

- a number of ms;
- ``("uniform", (lo, hi))``: drawn uniformly in [lo, hi) ms;
- ``("choice", [ms, ...])``, or a plain list of ms: one of them, at random;
- ``("constant", ms)``;
- ``("truncated_exponential", [mean, lo, hi])`` or neurogym's ``TruncExp`` object (fixed value
  only: neurogym draws those itself);
- a callable with no argument that returns ms (neurogym's lambda timings, e.g. ReadySetGo's
  ``measure``; fixed value only: the median of :data:`N_CALLABLE_DRAWS` calls).

:func:`typical_ms` is the fixed duration the probe set uses (the mean of a uniform, the median of
a choice, the mean of a truncated exponential clipped to its range); :func:`draw_ms` draws the
durations of ``n`` trials from a :class:`numpy.random.Generator`; :func:`fixed_timing` fixes
every period of a timing dict (what the neurogym envs get for their probe set).
"""

from __future__ import annotations

import numpy as np

from decisionnets.errors import ConfigError

#: Calls of a callable duration whose median is its typical duration.
N_CALLABLE_DRAWS = 101

FORMS = ("a duration in ms, ('uniform', (lo, hi)), ('choice', [ms, ...]), a list of ms, "
         "('constant', ms) or ('truncated_exponential', [mean, lo, hi])")


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _parse(value, name: str):
    """(kind, args) of a duration spec; kind in number, uniform, choice, texp."""
    if _is_number(value):
        return "number", value
    if hasattr(value, "vmean") and hasattr(value, "vmin") and hasattr(value, "vmax"):  # neurogym TruncExp
        return "texp", (value.vmean, value.vmin, value.vmax)
    if callable(value):  # neurogym's lambda timings (drawn from the env's own rng when called)
        return "callable", value
    if isinstance(value, (list, tuple)) and value and all(_is_number(v) for v in value):
        return "choice", value
    if isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], str):
        dist, args = value
        if dist == "uniform" and isinstance(args, (list, tuple)) and len(args) == 2:
            return "uniform", args
        if dist == "choice" and isinstance(args, (list, tuple)) and len(args) > 0:
            return "choice", args
        if dist == "constant" and _is_number(args):
            return "number", args
        if dist == "truncated_exponential" and isinstance(args, (list, tuple)) and len(args) == 3:
            return "texp", tuple(args)
    raise ConfigError(f"timing[{name!r}] must be {FORMS}; got {value!r}")


def typical_ms(value, name: str = "?"):
    """The fixed duration (ms) of the period spec ``value``: a number as given, the mean of a
    uniform, the median of a choice, the mean of a truncated exponential clipped to [lo, hi], the
    median of :data:`N_CALLABLE_DRAWS` calls of a callable."""
    kind, args = _parse(value, name)
    if kind == "number":
        return args
    if kind == "callable":
        try:
            draws = np.asarray([args() for _ in range(N_CALLABLE_DRAWS)], dtype=float)
        except Exception as e:  # a callable that needs arguments or fails: say which period
            raise ConfigError(f"timing[{name!r}]: the callable duration {args!r} could not be called "
                              f"without arguments ({type(e).__name__}: {e}); give {FORMS}") from None
        if not np.isfinite(draws).all():
            raise ConfigError(f"timing[{name!r}]: the callable duration returned a non-finite value")
        return float(np.median(draws))
    if kind == "uniform":
        lo, hi = map(float, args)
        return (lo + hi) / 2
    if kind == "choice":
        return float(np.median(np.asarray(args, dtype=float)))
    mean, lo, hi = args
    return float(np.clip(mean, lo, hi))


def draw_ms(value, rng: np.random.Generator | None, n: int, name: str = "?") -> np.ndarray:
    """Durations (ms) of one period for ``n`` trials, shape (n,), float.

    ``rng=None`` gives every trial the :func:`typical_ms` duration (the probe set's fixed timing).
    """
    if rng is None:
        return np.full(n, float(typical_ms(value, name)))
    kind, args = _parse(value, name)
    if kind == "number":
        return np.full(n, float(args))
    if kind == "uniform":
        lo, hi = map(float, args)
        return rng.uniform(lo, hi, size=n)
    if kind == "choice":
        return rng.choice(np.asarray(args, dtype=float), size=n)
    if kind == "callable":
        raise ConfigError(f"timing[{name!r}]: callable durations are drawn by neurogym's own envs only; give "
                          f"this env a number, ('uniform', (lo, hi)) or ('choice', [...]); got {value!r}")
    raise ConfigError(f"timing[{name!r}]: truncated exponential durations are drawn by neurogym's own envs "
                      f"only; give this env a number, ('uniform', (lo, hi)) or ('choice', [...]); got {value!r}")


def fixed_timing(timing: dict, dt: float) -> dict:
    """``timing`` with every period at its :func:`typical_ms` duration, rounded down to a multiple of ``dt``."""
    return {p: (typical_ms(v, p) // dt) * dt for p, v in timing.items()}
