"""Usable (predictive V-) information, estimated by batched, cross-validated decoders.

The quantity (Xu et al. 2020; Kleinman et al. 2021) of a representation Z about a label Y is
``I_V(Z -> Y) = H_V(Y | nothing) - H_V(Y | Z)`` in bits: the held-out cross-entropy of the
training-fold label prior minus that of the best decoder of the family V.

Modules
-------
=============================================  =====================================================
:mod:`decisionnets.decoding.frontend`          :func:`usable_information`, :func:`decoding_scores`:
                                               decoding problems from xarray objects
:mod:`decisionnets.decoding.temporal`          :func:`cross_temporal_information`
:mod:`decisionnets.decoding.estimator`         :class:`UsableInformation`, the batched estimator
:mod:`decisionnets.decoding.folds`             missing samples, rare classes, stratified folds
:mod:`decisionnets.decoding.nested`            nested CV of the penalty along the L2 path
:mod:`decisionnets.decoding.base`              the decoder protocol (:class:`Decoder`)
:mod:`decisionnets.decoding.logistic`          ``linear``, ``linear-raw`` (:class:`LogisticDecoder`)
:mod:`decisionnets.decoding.mlp`               ``mlp`` (:class:`MLPDecoder`)
:mod:`decisionnets.decoding.sgd`               ``sgd-mlp``, ``sgd-linear`` (:class:`SGDDecoder`)
:mod:`decisionnets.decoding.registry`          :func:`get_decoder`, :func:`register_decoder`,
                                               :func:`decoder_names`
=============================================  =====================================================
"""

from decisionnets.decoding.base import DEFAULT_L2_GRID, Decoder, DecoderFit
from decisionnets.decoding.estimator import LN2, UNRELIABLE_FLAGS, UNSTABLE_SD, UsableInformation
from decisionnets.decoding.frontend import decoding_scores, usable_information
from decisionnets.decoding.logistic import LogisticDecoder
from decisionnets.decoding.mlp import MLPDecoder
from decisionnets.decoding.registry import decoder_names, decoder_params, get_decoder, register_decoder
from decisionnets.decoding.sgd import SGDDecoder
from decisionnets.decoding.temporal import cross_temporal_information

__all__ = [
    "UsableInformation",
    "UNRELIABLE_FLAGS",
    "UNSTABLE_SD",
    "usable_information",
    "decoding_scores",
    "cross_temporal_information",
    "DEFAULT_L2_GRID",
    "LN2",
    "Decoder",
    "DecoderFit",
    "LogisticDecoder",
    "MLPDecoder",
    "SGDDecoder",
    "get_decoder",
    "register_decoder",
    "decoder_names",
    "decoder_params",
]
