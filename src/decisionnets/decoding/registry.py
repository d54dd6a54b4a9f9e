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

from typing import Callable

from decisionnets.decoding.base import Decoder
from decisionnets.decoding.logistic import LogisticDecoder
from decisionnets.decoding.mlp import MLPDecoder
from decisionnets.decoding.sgd import SGDDecoder
from decisionnets.errors import UserError

__all__ = ["register_decoder", "get_decoder", "decoder_names"]


_REGISTRY: dict[str, Callable[..., Decoder]] = {}


def register_decoder(name: str, factory: Callable[..., Decoder], *, overwrite: bool = False) -> None:
    """Make a decoder family available by name (``decoder=name`` everywhere, ``--decoder name``).

    Parameters
    ----------
    name : str
    factory : callable returning a :class:`decisionnets.decoding.Decoder` (a class or a function);
        keyword arguments of :func:`get_decoder` are passed on to it.
    overwrite : bool — replace an existing name (else a UserError).
    """
    if not isinstance(name, str) or not name:
        raise UserError(f"a decoder name must be a non-empty string; got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise UserError(f"decoder {name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[name] = factory


def decoder_names() -> tuple[str, ...]:
    """Registered decoder names."""
    return tuple(_REGISTRY)


def get_decoder(decoder, **kwargs) -> Decoder:
    """A :class:`decisionnets.decoding.Decoder` from a registered name (with keyword overrides) or a Decoder object.

    The family owns its parameters: ``get_decoder("linear", l2_grid=[0.1, 1, 10], tol=1e-5)``,
    ``get_decoder("mlp", hidden=64, max_iter=300)``, ``get_decoder("sgd-mlp", lr=0.005)`` (see
    :class:`decisionnets.decoding.LogisticDecoder`, :class:`decisionnets.decoding.MLPDecoder`,
    :class:`decisionnets.decoding.SGDDecoder`). Pass the object as
    ``decoder=`` to :class:`decisionnets.UsableInformation`, :func:`decisionnets.usable_information`
    or :class:`decisionnets.UsableInformationEstimator`.

    Raises
    ------
    UserError
        An unknown name, or a keyword the family does not take.
    """
    if isinstance(decoder, Decoder):
        return decoder
    if isinstance(decoder, str) and decoder in _REGISTRY:
        try:
            return _REGISTRY[decoder](**kwargs)
        except TypeError as e:  # an unknown keyword: the family's own parameters are in its docstring
            raise UserError(f"decoder {decoder!r} cannot be configured with {sorted(kwargs)}: {e}") from None
    raise UserError(f"decoder must be one of {decoder_names()} or a decisionnets.decoding.Decoder; got {decoder!r}")


register_decoder("linear", lambda **kw: LogisticDecoder(standardize=True, **kw))
register_decoder("linear-raw", lambda **kw: LogisticDecoder(standardize=False, **kw))
register_decoder("mlp", MLPDecoder)
register_decoder("sgd-mlp", lambda **kw: SGDDecoder(nonlinear=True, **kw))
register_decoder("sgd-linear", lambda **kw: SGDDecoder(nonlinear=False, **kw))
