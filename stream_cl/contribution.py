"""A partition's part of a learner, as plain arrays and JSON-able metadata.

A :class:`Contribution` is what ``learner.contribution(partition)`` returns and
``learner.merge(partition, contribution)`` installs (see :mod:`stream_cl.parts` and
``docs/partitions.md``). It travels as the bytes of a checkpoint
(:func:`stream_cl.checkpoint_format.encode_state`): arrays as tensors, everything else JSON,
nothing pickled, so loading one never runs code from it.

It holds:

* ``identity``: the learner's kind, its settings and its backbone's identity; a merge
  refuses a contribution whose identity differs, naming both;
* ``inputs``: the input names (and their kinds) that index the arrays, and per head the
  class names of its columns, so that a learner that met features and classes in
  another order aligns them by name;
* ``heads``: per ridge head the partition's additive statistics ``A`` (X'X), ``B``
  (X'Y), ``counts``, ``n_rows`` (decayed on the partition's own clock for forgetting heads);
  the first head's entry also carries ``partition_classes``, the classes the partition's own
  learned events brought (``model.max_classes`` counts them; absent in older contributions);
* ``local``: the partition's non-additive state (standardiser, SGD head, mixer records,
  drift and homeostasis state), or ``None`` for a learner that has none;
* ``offset``: the next source offset the part covers (``None`` outside a source), and
  ``pending``: what the caller keeps beside it (the daemon: its delayed-label store).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .checkpoint_format import CheckpointError, decode_state, encode_state

__all__ = ["Contribution", "ContributionError", "CONTRIBUTION_VERSION"]

CONTRIBUTION_VERSION = 1
_FORMAT = "stream-cl-contribution"


class ContributionError(ValueError):
    """A contribution that cannot be read or merged (the message says which and why)."""


@dataclass
class Contribution:
    identity: dict
    partition: Any
    inputs: dict
    heads: list
    local: dict | None = None
    offset: int | None = None
    pending: Any = None
    events: int = 0
    version: int = field(default=CONTRIBUTION_VERSION)

    def _tree(self) -> dict:
        return {"format": _FORMAT, "version": self.version, "identity": self.identity, "partition": self.partition,
                "inputs": self.inputs, "heads": self.heads, "local": self.local, "offset": self.offset,
                "pending": self.pending, "events": self.events}

    def to_bytes(self) -> bytes:
        """The checkpoint encoding of this contribution (round-trips exactly), with a SHA-256
        of its content that :meth:`from_bytes` checks (a flipped bit in an array is refused)."""
        tree = self._tree()
        # its own digest (what every version reads) covers it: no second one for the file
        return encode_state({**tree, "sha256": _digest(tree)}, digest=False)

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Contribution":
        """Read a contribution; :class:`ContributionError` if the bytes are not one this version reads."""
        try:
            state, _ = decode_state(raw, "contribution")
        except CheckpointError as e:
            raise ContributionError(str(e)) from None
        if not isinstance(state, Mapping) or state.get("format") != _FORMAT:
            raise ContributionError("contribution: not a stream-cl contribution")
        digest = state.pop("sha256", None) if isinstance(state, dict) else None
        if state.get("version") != CONTRIBUTION_VERSION:
            raise ContributionError(f"contribution: format version {state.get('version')!r}, this stream-cl reads "
                                    f"version {CONTRIBUTION_VERSION}")
        try:
            c = cls(identity=dict(state["identity"]), partition=state["partition"], inputs=dict(state["inputs"]),
                    heads=list(state["heads"]), local=state["local"], offset=state["offset"],
                    pending=state["pending"], events=int(state["events"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ContributionError(f"contribution: missing or malformed field ({type(e).__name__}: {e})") from None
        if c.pending is not None and not isinstance(c.pending, Mapping):  # (its readers look keys up in it)
            raise ContributionError(f"contribution: malformed field pending (a {type(c.pending).__name__})")
        if digest != _digest(c._tree()):
            raise ContributionError("contribution: content does not match its SHA-256 (corrupted in transit or storage)")
        return c

    @staticmethod
    def coerce(value: "Contribution | bytes") -> "Contribution":
        """``value`` itself, or read from its bytes (:meth:`from_bytes`); :class:`ContributionError` for anything
        else."""
        if isinstance(value, Contribution):
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):
            return Contribution.from_bytes(bytes(value))
        raise ContributionError(f"a contribution is a Contribution or its bytes, not a {type(value).__name__}")


# the types whose repr a list of them is hashed by at once (their subclasses, numpy scalars say, go one by one)
_REPR_SCALARS = frozenset({str, int, float, bool, type(None)})


def _digest(tree) -> str:
    """SHA-256 over a state tree: every array's dtype, shape and bytes and every other value's repr, in order.

    A list or tuple of plain scalars (a partition's waiting-label ids, 100,000 of them) is hashed as
    one string: SHA-256 of the pieces fed one at a time is the SHA-256 of them joined, so the digest is
    the one an element-by-element walk gives (contributions that older versions wrote still check), at
    a tenth of its time.
    """
    h = hashlib.sha256()

    def walk(v):
        text = _plain_text(v) if type(v) in (list, tuple) else None
        if text is not None:
            h.update(text.encode())
        elif isinstance(v, np.ndarray):
            h.update(f"a{v.dtype.str}{v.shape}".encode())
            h.update(np.ascontiguousarray(v).tobytes())
        elif isinstance(v, Mapping):
            h.update(b"{")
            for k, x in v.items():
                h.update(repr(k).encode())
                walk(x)
            h.update(b"}")
        elif isinstance(v, (list, tuple)):
            h.update(b"[" if isinstance(v, list) else b"(")
            for x in v:
                walk(x)
            h.update(b"]")
        else:
            h.update(repr(v).encode())

    walk(tree)
    return h.hexdigest()


def _plain_text(v: list | tuple) -> str | None:
    """What :func:`_digest`'s walk feeds the hash for a list or tuple of plain scalars, or of lists and tuples
    of them (a store's ids; its published ``[label, probability]`` pairs), as one string; None for another."""
    if all(type(x) in _REPR_SCALARS for x in v):
        return ("[" if type(v) is list else "(") + "".join(map(repr, v)) + "]"
    parts = []
    for x in v:
        t = type(x)
        if t in _REPR_SCALARS:
            parts.append(repr(x))
        elif (t is list or t is tuple) and all(type(y) in _REPR_SCALARS for y in x):
            parts.append(("[" if t is list else "(") + "".join(map(repr, x)) + "]")
        else:
            return None
    return ("[" if type(v) is list else "(") + "".join(parts) + "]"
