"""Decoder families by name: ``decoder=NAME`` everywhere, ``--decoder NAME`` on the command line.

Families
--------
=============  ==============================================================  =====================
name           model                                                           question
=============  ==============================================================  =====================
``linear``     L2 logistic regression on fold-standardized units, nested CV    scale-invariant
``linear-raw`` L2 logistic regression on raw units, nested CV                  scale-sensitive
``mlp``        one hidden layer (tanh) on fold-standardized units, Adam, L2    scale-invariant
``sgd-mlp``    the authors' decoder: D-64-64-64-K LeakyReLU MLP, dropout 0.5,  scale-sensitive
               full-batch plain SGD lr 0.05, 3,000 iterations, raw units
``sgd-linear`` the same stack, no nonlinearity, dropout 0.8                    scale-sensitive
=============  ==============================================================  =====================

A *scale-invariant* family asks "is the variable (linearly) present at all": it counts a signal
carried by units that weight decay has shrunk to float-noise level. A *scale-sensitive* family asks
"is it usable by a decoder of bounded size or training budget": such units are hard to use.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable

from decisionnets.decoding.base import Decoder
from decisionnets.decoding.logistic import LogisticDecoder
from decisionnets.decoding.mlp import MLPDecoder
from decisionnets.decoding.sgd import SGDDecoder
from decisionnets.errors import UserError

__all__ = ["register_decoder", "get_decoder", "decoder_names", "decoder_params"]


_REGISTRY: dict[str, Callable[..., Decoder]] = {}
_PARAMS: dict[str, tuple[str, ...] | None] = {}


def _declared_params(factory) -> tuple[str, ...] | None:
    """The keyword parameters ``factory`` takes, from its signature (a class, a function or a
    :func:`functools.partial`); None when it takes ``**kwargs`` (then the factory itself refuses)."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return tuple(n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def register_decoder(name: str, factory: Callable[..., Decoder], *, overwrite: bool = False) -> None:
    """Make a decoder family available by name (``decoder=name`` everywhere, ``--decoder name``).

    Parameters
    ----------
    name : str
    factory : callable returning a :class:`decisionnets.decoding.Decoder` (a class, a function or a
        :func:`functools.partial` of a class); the keyword arguments of :func:`get_decoder` are
        passed on to it, and its signature declares the parameters the family takes
        (:func:`decoder_params`).
    overwrite : bool — replace an existing name (else a UserError).
    """
    if not isinstance(name, str) or not name:
        raise UserError(f"a decoder name must be a non-empty string; got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise UserError(f"decoder {name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[name] = factory
    _PARAMS[name] = _declared_params(factory)


def decoder_names() -> tuple[str, ...]:
    """Registered decoder names."""
    return tuple(_REGISTRY)


def decoder_params(name: str) -> tuple[str, ...] | None:
    """The parameters the family ``name`` takes (keywords of :func:`get_decoder`); None when its
    factory does not declare them (it takes ``**kwargs``)."""
    if name not in _REGISTRY:
        raise UserError(f"decoder must be one of {decoder_names()}; got {name!r}")
    return _PARAMS[name]


def get_decoder(decoder, **params) -> Decoder:
    """A :class:`decisionnets.decoding.Decoder` from a registered name (with its parameters) or a Decoder object.

    The family owns its parameters, and this is the one place that resolves a name and checks
    them: ``get_decoder("linear", l2_grid=[0.1, 1, 10], tol=1e-5)``,
    ``get_decoder("mlp", hidden=64, max_iter=300)``, ``get_decoder("sgd-mlp", lr=0.005)`` (see
    :class:`decisionnets.decoding.LogisticDecoder`, :class:`decisionnets.decoding.MLPDecoder`,
    :class:`decisionnets.decoding.SGDDecoder`). ``get_decoder("linear", standardize=False)`` is
    the ``linear-raw`` family (the decoder's ``name`` says so). Pass the object as
    ``decoder=`` to :class:`decisionnets.UsableInformation`, :func:`decisionnets.usable_information`
    or :class:`decisionnets.UsableInformationEstimator`.

    Raises
    ------
    UserError
        An unknown name; a parameter the family does not take (the message lists those it takes);
        parameters given with a Decoder object (it carries its own).
    """
    if isinstance(decoder, Decoder):
        if params:
            raise UserError(f"a Decoder object carries its own parameters; got {sorted(params)} with "
                            f"{getattr(decoder, 'name', type(decoder).__name__)!r} (configure it with get_decoder(NAME, ...))")
        return decoder
    if not (isinstance(decoder, str) and decoder in _REGISTRY):
        raise UserError(f"decoder must be one of {decoder_names()} or a decisionnets.decoding.Decoder; got {decoder!r}")
    takes = _PARAMS[decoder]
    bad = sorted(set(params) - set(takes)) if takes is not None else []
    if bad:
        raise UserError(f"decoder {decoder!r} cannot be configured with {bad}: it takes "
                        f"{', '.join(takes) or 'no parameters'}")
    try:
        return _REGISTRY[decoder](**params)
    except TypeError as e:  # a factory without a declared signature refused a keyword
        raise UserError(f"decoder {decoder!r} cannot be configured with {sorted(params)}: {e}") from None


register_decoder("linear", functools.partial(LogisticDecoder, standardize=True))
register_decoder("linear-raw", functools.partial(LogisticDecoder, standardize=False))
register_decoder("mlp", MLPDecoder)
register_decoder("sgd-mlp", functools.partial(SGDDecoder, nonlinear=True))
register_decoder("sgd-linear", functools.partial(SGDDecoder, nonlinear=False))
