"""Models: a field model exposes ``vector_field(t, x)``, a one-step map ``step(x, h)``
(:mod:`hnnkit.models.maps`, :func:`is_map`); the registered ones are built by name.

``build_model(name, dim, generator=g)`` builds a registered model (:func:`list_models`);
``register_model`` adds one (see :mod:`hnnkit.models.registry`). Each model module registers
its own entry when imported, so a module listed here is all it takes.
"""

from .autoencoder import MLPAutoencoder as MLPAutoencoder
from .autoencoder import PixelHNN as PixelHNN
from .baseline import Baseline as Baseline
from .dissipative import DissipativeHNN as DissipativeHNN
from .hnn import HNN as HNN
from .kan import KAN as KAN
from .kan import kan_regularizer as kan_regularizer
from .kan_hnn import make_kan_dhnn as make_kan_dhnn
from .kan_hnn import make_kan_hnn as make_kan_hnn
from .lnn import LNN as LNN
from .maps import NotAFieldError as NotAFieldError
from .maps import OneStepMap as OneStepMap
from .maps import is_map as is_map
from .mlp import ACTIVATIONS as ACTIVATIONS
from .mlp import MLP as MLP
from .node import build_neural_ode as build_neural_ode
from .registry import DEFAULT_KEYS as DEFAULT_KEYS
from .registry import ModelEntry as ModelEntry
from .registry import build_model as build_model
from .registry import build_with_shared_options as build_with_shared_options
from .registry import get_model as get_model
from .registry import list_models as list_models
from .registry import register_model as register_model
from .registry import train_defaults as train_defaults
from .registry import unregister_model as unregister_model
from .srnn import SeparableHNN as SeparableHNN
from .sympnet import SympNet as SympNet

build = build_model

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_KEYS",
    "HNN",
    "KAN",
    "LNN",
    "MLP",
    "Baseline",
    "DissipativeHNN",
    "MLPAutoencoder",
    "ModelEntry",
    "NotAFieldError",
    "OneStepMap",
    "PixelHNN",
    "SeparableHNN",
    "SympNet",
    "build",
    "build_model",
    "build_neural_ode",
    "build_with_shared_options",
    "get_model",
    "is_map",
    "kan_regularizer",
    "list_models",
    "make_kan_dhnn",
    "make_kan_hnn",
    "register_model",
    "train_defaults",
    "unregister_model",
]
