"""The torch path of the dense linear-algebra calls the ridge head needs: CUDA, or the CPU
through ``"torch:cpu"`` (tests cover the CUDA code with it). torch is imported when one is made."""

from __future__ import annotations

import numpy as np

from ._linalg import CPU_CHUNK, GPU_CHUNK
from .conditioning import LOST_DIGITS, LostDigits, equilibrated_inverse, equilibrated_solve

__all__ = ["TorchLinalg"]


class TorchLinalg:
    """The calls of :class:`~stream_cl.heads._linalg.NumpyLinalg` on torch tensors of one device."""

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.name = "torch:cpu" if self.device.type == "cpu" else str(self.device)
        self.max_chunk = CPU_CHUNK if self.device.type == "cpu" else GPU_CHUNK

    def asarray(self, a):
        """``a`` as a float64 tensor on the device (no copy where it is one there already)."""
        return self.torch.as_tensor(a, dtype=self.torch.float64, device=self.device)

    def to_numpy(self, a) -> np.ndarray:
        """The tensor ``a`` as a numpy array on the host (shares memory where ``a`` is on the CPU)."""
        return a.detach().cpu().numpy()

    def index(self, idx):
        """Integer positions ``idx`` as a long tensor on the device, to index its tensors with."""
        return self.torch.as_tensor(idx, dtype=self.torch.long, device=self.device)

    def own(self, M):
        """As :meth:`~stream_cl.heads._linalg.NumpyLinalg.own`: ``M`` itself (a tensor's layout is left to torch)."""
        return M

    def syrk_(self, M, V, alpha: float, beta: float) -> None:
        """``M = beta M + alpha V V'`` in place for symmetric ``M`` (d, d) and ``V`` (d, k), made exactly
        symmetric."""
        M.mul_(beta).addmm_(V, V.T, alpha=alpha)
        M.copy_((M + M.T).mul_(0.5))  # exactly symmetric, like the numpy path

    def ger_(self, M, alpha: float, x, y) -> None:
        """``M += alpha x y'`` in place for ``M`` (d, c)."""
        M.add_((x * alpha)[:, None] @ y[None, :])  # (d, 1) @ (1, c) -> (d, c)

    def zeros(self, *shape):
        """A float64 tensor of zeros of ``shape`` on the device."""
        return self.torch.zeros(shape, dtype=self.torch.float64, device=self.device)

    def eye(self, n):
        """The (n, n) float64 identity on the device."""
        return self.torch.eye(n, dtype=self.torch.float64, device=self.device)

    def powers(self, base: float, n: int):
        """``[base**1, ..., base**n]`` (n,) on the device."""
        exps = self.torch.arange(1, n + 1, dtype=self.torch.float64, device=self.device)
        return base**exps

    def cholesky_lower(self, S):
        """Lower Cholesky factor of ``S`` (b, b); ``LinAlgError`` where it is not positive definite."""
        C, info = self.torch.linalg.cholesky_ex(S)
        if int(info) != 0:
            raise np.linalg.LinAlgError("matrix is not positive definite")
        return C

    def solve_lower(self, C, M):
        """``C^-1 M`` (b, k) for lower-triangular ``C`` (b, b) and ``M`` (b, k)."""
        return self.torch.linalg.solve_triangular(C, M, upper=False)

    def spd_inverse(self, M):
        """As :meth:`~stream_cl.heads._linalg.NumpyLinalg.spd_inverse`: the inverse from the Cholesky
        factor, ``LinAlgError`` or :class:`LostDigits` where that fails."""
        return self.torch.cholesky_inverse(self._checked_factor(M))

    def equilibrate(self, M, shift: float):
        """:func:`~stream_cl.heads.conditioning.equilibrate` in the device's arrays."""
        torch = self.torch
        d = M.shape[0]
        S = M.clone()
        torch.diagonal(S).add_(shift)
        s = torch.ldexp(torch.ones(d, dtype=S.dtype, device=S.device),
                        -torch.div(torch.frexp(torch.diagonal(S)).exponent, 2, rounding_mode="floor"))
        S *= s[:, None] * s[None, :]  # (d, 1) * (1, d) -> (d, d)
        w, Q = torch.linalg.eigh(S)
        keep = w > (w[-1] * d * float(np.finfo(np.float64).eps) if d else 0.0)
        v = torch.where(keep, 1.0 / torch.where(keep, w, torch.ones_like(w)), torch.zeros_like(w))
        return s, Q, v

    def equilibrated_solve(self, E, B):
        """``M^+ B`` (d, c) for the factor ``E`` of :meth:`equilibrate`."""
        return equilibrated_solve(E, B)  # (array operators only: the device's arrays as they are)

    def equilibrated_inverse(self, E):
        """``M^+`` (d, d) for the factor ``E`` of :meth:`equilibrate`."""
        return equilibrated_inverse(E)

    def spd_factor(self, M, scale: float, shift: float, reuse=None):
        """The lower Cholesky factor ``L`` of ``scale M + shift I`` (``M`` whole), for :meth:`whiten` and
        :meth:`factor_solve`; ``reuse`` is ignored. ``LinAlgError`` or :class:`LostDigits` as
        :meth:`~stream_cl.heads._linalg.NumpyLinalg.spd_factor`."""
        S = M * scale
        self.torch.diagonal(S).add_(shift)
        return self._checked_factor(S)

    def _checked_factor(self, S):
        """:meth:`cholesky_lower`, and :class:`LostDigits` where its pivots are rounding noise
        (:func:`~stream_cl.heads.conditioning.lost_digits`), with one synchronisation as before."""
        C, info = self.torch.linalg.cholesky_ex(S)
        pivots, diagonal = self.torch.diagonal(C), self.torch.diagonal(S)
        kept = (pivots * pivots >= (LOST_DIGITS * S.shape[0]) * diagonal).all()
        if not bool(kept & (info == 0)):
            if int(info) != 0:
                raise np.linalg.LinAlgError("matrix is not positive definite")
            raise LostDigits.of(self.to_numpy(diagonal), self.to_numpy(pivots))
        return C

    def whiten(self, L, Xt):
        """``L^-1 Xt`` for the factor ``L`` of :meth:`spd_factor` and ``Xt`` (d, b)."""
        return self.torch.linalg.solve_triangular(L, Xt, upper=False)

    def unwhiten(self, L, Z):
        """``L'^-1 Z`` for the factor ``L`` of :meth:`spd_factor`: the second half of :meth:`factor_solve`."""
        return self.torch.linalg.solve_triangular(L.mT, Z, upper=True)

    def factor_solve(self, L, B):
        """``(LL')^-1 B`` (d, c) for the factor ``L`` of :meth:`spd_factor` and ``B`` (d, c)."""
        return self.torch.cholesky_solve(B, L)

    def gram_plus_diag(self, V, v):
        """``V'V + diag(v)`` (b, b), whole, for ``V`` (d, b)."""
        S = V.T @ V
        self.torch.diagonal(S).add_(v)
        return S

    def diag(self, M):
        """The diagonal of ``M`` (d,): a view."""
        return self.torch.diagonal(M)

    def add_to_diag(self, M, v) -> None:
        """``M += diag(v)`` in place."""
        self.torch.diagonal(M).add_(v)

    def pad(self, M, rows: int, cols: int):
        """``M`` with ``rows`` zero rows and ``cols`` zero columns added (a new tensor)."""
        return self.torch.nn.functional.pad(M, (0, cols, 0, rows))
