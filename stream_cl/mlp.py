"""The network of :class:`~stream_cl.trainable.TrainableLearner`: an MLP that grows inputs and classes.

ReLU hidden layers of ``widths`` and a linear output layer with a row per class. A new
input gets first-layer weights seeded by its feature *key* (so the order in which keys
arrive does not matter); a new class gets a zero output row (its logit is 0 until it is
trained). :meth:`OnlineMLP.train` takes Adam steps (decoupled weight decay) with a learning
rate per layer; a step that would leave a weight or a moment NaN or infinite is not taken,
only counted (``skipped_steps``).

>>> net = OnlineMLP(widths=(4,), seed=0, dtype=torch.float64, device="cpu")
>>> net.grow_inputs(["a", "b"])
>>> net.add_class()
>>> net.logits(np.ones((3, 2))).shape  # (rows, classes)
torch.Size([3, 1])
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np
import torch

from .backbones.random_features import key_seed
from .state_checks import CORRUPT, saved_array, saved_count

__all__ = ["OnlineMLP", "BETA1", "BETA2", "EPS"]

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


def _checked_arrays(state) -> tuple[list, list, list]:
    """The saved parameters and Adam moments as arrays, once they make one network: finite, each moment of
    its parameter's shape, second moments >= 0, and weights W (out, in) and biases b (out,) in pairs whose
    widths chain from one layer to the next."""
    params = [np.asarray(a) for a in state["params"]]
    if not len(params) == len(state["m"]) == len(state["v"]) or len(params) % 2:
        raise ValueError(f"saved state: network params, m and v must be pairs of arrays, one each per parameter, got "
                         f"{len(params)}, {len(state['m'])} and {len(state['v'])} {CORRUPT}")
    for i in range(0, len(params), 2):
        W, b = params[i].shape, params[i + 1].shape
        if len(W) != 2 or b != W[:1] or (i and W[1] != params[i - 2].shape[0]):
            raise ValueError(f"saved state: network layer {i // 2} has a weight of shape {W} and a bias of shape {b}, "
                             f"which do not follow the layer before {CORRUPT}")
    arrays = []
    for name, arrs, low in (("params", params, -math.inf), ("m", state["m"], -math.inf), ("v", state["v"], 0.0)):
        out = [saved_array(a, f"network {name}[{i}]", low) for i, a in enumerate(arrs)]
        bad = next((i for i, (a, p) in enumerate(zip(out, params)) if a.shape != p.shape), None)
        if bad is not None:
            raise ValueError(f"saved state: network {name}[{bad}] has shape {out[bad].shape}, its parameter "
                             f"{params[bad].shape} {CORRUPT}")
        arrays.append(out)
    return arrays[0], arrays[1], arrays[2]


class OnlineMLP:
    """Parameters ``params`` (W0, b0, W1, b1, ..., W_out, b_out) and Adam's moments ``m``, ``v``."""

    def __init__(self, widths: tuple, seed: int, dtype: torch.dtype, device: str):
        self.widths = tuple(widths)
        self.seed = seed
        self.dtype = dtype
        self.device = device
        self.params: list[torch.Tensor] = []
        self.m: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        self.t = 0  # Adam steps taken
        self.skipped_steps = 0  # Adam steps not taken: their new weights or moments were not all finite
        # inputs of the first growth that brought any (the first layer's weight scale); 0 until
        # then. Fixed by the first event with inputs, not by the build, so that a network built
        # from a batch's first rows scales its columns as the per-event loop's network does
        self.fan_in = 0

    @property
    def n_layers(self) -> int:
        """Weight layers: the hidden ones of ``widths`` and the output layer."""
        return len(self.widths) + 1

    @property
    def n_inputs(self) -> int:
        """Inputs the first layer has columns for (0 before any)."""
        return self.params[0].shape[1] if self.params else 0

    # -- growing ---------------------------------------------------------------------------
    def _input_columns(self, keys: Sequence[Hashable], rows: int) -> torch.Tensor:
        """First-layer weights of new inputs (rows, len(keys)), seeded by each key."""
        scale = 1.0 / math.sqrt(max(self.fan_in, 1))
        cols = [np.random.default_rng([self.seed, 1, key_seed(k)]).standard_normal(rows) * scale for k in keys]
        W = np.stack(cols, axis=1) if cols else np.zeros((rows, 0))  # (rows, keys)
        return torch.as_tensor(W, dtype=self.dtype, device=self.device)

    def _zeros(self, *shape) -> torch.Tensor:
        return torch.zeros(shape, dtype=self.dtype, device=self.device)

    def _build(self, keys: Sequence[Hashable]) -> None:
        d = len(keys)
        self.fan_in = d
        widths = list(self.widths)
        params = []
        if widths:
            params += [self._input_columns(keys, widths[0]), self._zeros(widths[0])]
            # torch takes seeds below 2**64: any seed check_seed takes works (review r117), the smaller ones as before
            gen = torch.Generator().manual_seed((int(self.seed) * 7919 + 17) % 2**64)
            for i in range(1, len(widths)):
                fan = widths[i - 1]
                W = (torch.rand(widths[i], fan, generator=gen, dtype=torch.float64) * 2 - 1) * math.sqrt(6.0 / fan)
                b = torch.zeros(widths[i], dtype=torch.float64)
                params += [W.to(self.device, self.dtype), b.to(self.device, self.dtype)]
            params += [self._zeros(0, widths[-1]), self._zeros(0)]
        else:  # softmax regression: the output layer sees the inputs
            params += [self._zeros(0, d), self._zeros(0)]
        self.params = params
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def grow_inputs(self, keys: Sequence[Hashable]) -> None:
        """Inputs ``keys`` (all of them, in column order): columns for those beyond the first layer's."""
        if not self.params:
            self._build(keys)
            return
        W = self.params[0]
        extra = len(keys) - W.shape[1]
        if extra <= 0:
            return
        if not self.fan_in:  # the first inputs (the network was built before any): they set the scale
            self.fan_in = len(keys)
        if self.widths:
            new = self._input_columns(keys[W.shape[1]:], W.shape[0])
        else:  # output rows start at zero
            new = self._zeros(W.shape[0], extra)
        self.params[0] = torch.cat([W, new], dim=1)
        self.m[0] = torch.cat([self.m[0], torch.zeros_like(new)], dim=1)
        self.v[0] = torch.cat([self.v[0], torch.zeros_like(new)], dim=1)

    def add_class(self) -> None:
        """A zero output row: the new class's logit is 0 until it is trained."""
        for i in (-2, -1):
            p = self.params[i]
            z = self._zeros(1, *p.shape[1:])
            self.params[i] = torch.cat([p, z], dim=0)
            self.m[i] = torch.cat([self.m[i], z], dim=0)
            self.v[i] = torch.cat([self.v[i], z.clone()], dim=0)

    # -- computing -------------------------------------------------------------------------
    def logits(self, Z: np.ndarray, params=None) -> torch.Tensor:
        """Logits (rows, classes) of standardised rows ``Z`` (missing trailing inputs: 0)."""
        params = self.params if params is None else params
        h = torch.as_tensor(Z, dtype=self.dtype, device=self.device)
        d = params[0].shape[1]
        if h.shape[1] < d:
            h = torch.nn.functional.pad(h, (0, d - h.shape[1]))
        h = h[:, :d]
        n = len(params) // 2
        for i in range(n):
            h = h @ params[2 * i].T + params[2 * i + 1]
            if i < n - 1:
                h = torch.relu(h)
        return h  # (rows, classes)

    def train(self, Z: np.ndarray, target: torch.Tensor, lrs: Sequence[float], steps: int, weight_decay: float) -> None:
        """``steps`` Adam steps on the cross-entropy of rows ``Z`` with class indices ``target``.

        A step whose new parameters or moments are not all finite is not taken (:meth:`_step`)."""
        for _ in range(steps):
            params = [p.detach().requires_grad_(True) for p in self.params]
            loss = torch.nn.functional.cross_entropy(self.logits(Z, params), target)
            grads = torch.autograd.grad(loss, params)
            self._step(grads, lrs, weight_decay)

    def _step(self, grads: Sequence[torch.Tensor], lrs: Sequence[float], weight_decay: float) -> None:
        """One Adam step, computed out of place and kept only if every new tensor is finite.

        A step that overflows (a rate far too large, a loss already infinite) would leave NaN or
        infinite weights, and every later prediction and checkpoint with them; skipped, the
        network keeps serving what it had, and :attr:`skipped_steps` counts it. A finite step
        is the same arithmetic as an in-place one, to the bit."""
        t = self.t + 1
        c1, c2 = 1 - BETA1**t, 1 - BETA2**t
        with torch.no_grad():
            ms, vs, ps = [], [], []
            for i, (p, g) in enumerate(zip(self.params, grads)):
                lr = lrs[i // 2]
                m = (self.m[i] * BETA1).add_(g, alpha=1 - BETA1)
                v = (self.v[i] * BETA2).addcmul_(g, g, value=1 - BETA2)
                step = (m / c1) / ((v / c2).sqrt() + EPS)
                new = p - lr * step
                if weight_decay:
                    new -= lr * weight_decay * p
                ms.append(m)
                vs.append(v)
                ps.append(new)
            # a sum is NaN or infinite if an entry is (or if the entries are near overflow, where the
            # logits would overflow anyway): 10-25x cheaper on the CPU than torch.isfinite(x).all(),
            # which builds a bool tensor the size of x; one device sync for the whole step. The first
            # moments need no check: a finite v means every g * g was finite, so m is too
            if not bool(torch.isfinite(torch.stack([x.sum() for x in (*ps, *vs)]).sum())):
                self.skipped_steps += 1
                return
        self.params, self.m, self.v, self.t = ps, ms, vs, t

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Copies of the parameters and Adam's moments as numpy arrays, the step count, ``fan_in`` and
        ``skipped_steps``."""
        arrays = lambda ts: [t.detach().cpu().numpy().copy() for t in ts]  # noqa: E731
        return {"params": arrays(self.params), "m": arrays(self.m), "v": arrays(self.v), "t": self.t, "fan_in": self.fan_in,
                "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state) -> "OnlineMLP":
        """Restore :meth:`state_dict` in this network's dtype and device (its ``widths`` are not checked here);
        returns ``self``. A state whose parameters or moments are not finite, whose second moments are
        negative, or whose arrays do not make one network is a ``ValueError`` before anything changes: the
        other learners' states are checked so (r93), and a NaN weight made every later prediction NaN."""
        params, m, v = _checked_arrays(state)
        t, fan_in = saved_count(state["t"], "network t"), saved_count(state["fan_in"], "network fan_in")
        skipped = saved_count(state.get("skipped_steps", 0), "network skipped_steps")  # states written before it was counted: 0
        tens = lambda arrs: [torch.as_tensor(a, dtype=self.dtype, device=self.device) for a in arrs]  # noqa: E731
        self.params, self.m, self.v = tens(params), tens(m), tens(v)
        self.t, self.fan_in, self.skipped_steps = t, fan_in, skipped
        if not self.n_inputs:  # states written before the scale waited for inputs held 1 here
            self.fan_in = 0
        return self

    def __getstate__(self):
        state = dict(self.__dict__)
        for k in ("params", "m", "v"):
            state[k] = [t.detach().cpu() for t in state[k]]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("skipped_steps", 0)  # pickled before it was counted
        for k in ("params", "m", "v"):
            self.__dict__[k] = [t.to(self.device) for t in self.__dict__[k]]
