"""Feature backbones: online standardisation, frozen random features, any torch module."""

from .base import Backbone
from .device import resolve_device, torch_device
from .key_units import KeyUnits
from .random_features import RandomFeatures
from .standardize import OnlineStandardizer
from .torch_module import TorchBackbone

__all__ = ["Backbone", "KeyUnits", "OnlineStandardizer", "RandomFeatures", "TorchBackbone", "resolve_device", "torch_device"]
