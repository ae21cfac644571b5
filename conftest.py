"""Test-wide settings: one numeric thread (see stream_cl.runtime), fixed seeds."""

import random

import numpy as np

from stream_cl.runtime import set_threads

set_threads(1)
random.seed(0)
np.random.seed(0)
