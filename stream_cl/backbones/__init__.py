"""Feature backbones: online standardisation, frozen random features, any torch module."""

from .base import Backbone
from .device import resolve_device
from .random_features import RandomFeatures
from .standardize import OnlineStandardizer
from .torch_module import TorchBackbone

__all__ = ["Backbone", "OnlineStandardizer", "RandomFeatures", "TorchBackbone", "resolve_device"]
