"""The checkpoint file format: a nested state as the bytes of one safetensors file, and back.

A checkpoint is one ``.safetensors`` file. Every array of the state (numpy or torch)
is a tensor in it; everything else (dicts, lists, strings, numbers, booleans, None) is
a JSON tree in the file's metadata (format version 1) or, when the tree passes
``HEADER_TREE_MAX`` bytes, in a tensor of its own (version 2: safetensors bounds a header
at 100 MB), where each array is replaced by a reference to its tensor.
Nothing is pickled, so loading a checkpoint never executes code from it.

Types round-trip exactly: ``int``, ``float`` (NaN and infinities included), ``bool``,
``str``, ``None``, ``bytes``, lists, tuples, dicts with keys of any of the scalar
types (feature names and class labels may be ``str``, ``int`` or ``bool``), numpy
scalars and arrays (dtype and shape kept), torch tensors. JSON carries the common
cases natively; the rest is tagged (``{"$tuple": [...]}``, ``{"$dict": [[k, v]...]}``...).

The file carries ``format`` and ``format_version``; a reader refuses versions it does not know.
The header also carries a SHA-256 of the content (every tensor's name, dtype, shape and
bytes, and the JSON state and metadata): a reader refuses a file whose content does not
match it, since a flipped bit in a tensor or in the JSON would otherwise load silently as
another model or other offsets. Files written before the digest existed have none and
load as before.

Files on disk, written atomically and numbered in a directory, are :mod:`stream_cl.checkpoint`'s.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "HEADER_TREE_MAX",
    "READ_VERSIONS",
    "CheckpointError",
    "decode_state",
    "encode_state",
]

FORMAT = "stream-cl-checkpoint"
# Version 1 keeps the state's JSON tree in the file's header; version 2 keeps it in a uint8 tensor,
# because safetensors refuses a header over 100 MB, which the strings of a big state pass (the ids
# and texts of 400,000 waiting labels, or long feature names). A tree that fits the header is still
# written as version 1, which every release reads: the format does not stop a rollback, or an older
# member of a consumer group reading a changelog contribution, from decoding the file. What the file
# holds may: an older release refuses [model] settings it does not know (one from before max_classes
# refuses a checkpoint that records it, exit 2 naming the key; no config of that release can match
# it). Downgrades and mixed-release groups: docs/daemon.md, "Upgrades, downgrades, mixed releases".
FORMAT_VERSION = 2  # the newest version written
READ_VERSIONS = (1, 2)  # the versions this release reads
HEADER_TREE_MAX = 64 * 2**20  # bytes of JSON tree kept in the header (safetensors' bound: 100 MB in all)
_TREE_TENSOR_KEY = "state_tensor"  # version 2: the header names the tensor that holds the tree
# the header key of the content's SHA-256; not a format_version change: a reader without it ignores
# the key (a rollback still decodes new files; the settings in them are compared apart, as above),
# and files written before it load unchecked. It is checked before format and format_version (it
# covers them): a later format that computes it otherwise must store it under another key, or its
# files would read as corrupt, not as newer
_DIGEST_KEY = "sha256"


class CheckpointError(Exception):
    """A checkpoint that cannot be written or read (the message says which and why)."""


# -- encoding -------------------------------------------------------------------------------
# the types the encoder writes as themselves (a finite float too): their subclasses go through encode
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


class _Encoder:
    """State tree -> (JSON-able tree, {tensor name: array})."""

    def __init__(self):
        self.tensors: dict[str, np.ndarray] = {}

    def name(self, path: str) -> str:
        # a tensor's name is only looked up, never read back as a key: a lone surrogate in it (which
        # safetensors cannot write) is spelled out as its escape
        path = path.encode("utf-8", "backslashreplace").decode("utf-8")
        name = path or "root"
        n = 1
        while name in self.tensors:  # "a.b" as a key vs a nested a -> b (or a key spelled as the escape): keep both
            n += 1
            name = f"{path}#{n}"
        return name

    def encode(self, v: Any, path: str) -> Any:
        if v is None or v is True or v is False or type(v) is str:
            return v
        if type(v) is int:
            return v
        if type(v) is float:
            return v if math.isfinite(v) else {"$float": repr(v)}
        if isinstance(v, np.ndarray):
            if v.dtype.kind not in "biuf" or v.dtype.byteorder not in "=|<":
                if v.dtype.kind in "biuf":  # big-endian: store little-endian
                    v = v.astype(v.dtype.newbyteorder("<"))
                else:
                    raise CheckpointError(f"{path or 'state'}: cannot checkpoint an array of dtype {v.dtype}; use numbers or lists")
            key = self.name(path)
            self.tensors[key] = np.ascontiguousarray(v)
            return {"$array": key, "shape": []} if v.ndim == 0 else {"$array": key}  # safetensors reads 0-d as (1,)
        if isinstance(v, np.generic):
            if v.dtype.kind not in "biufUS":  # numbers, booleans, np.str_ and np.bytes_ (labels)
                raise CheckpointError(f"{path or 'state'}: cannot checkpoint a numpy {v.dtype} scalar")
            value = bytes(v) if v.dtype.kind == "S" else v.item()  # U: str; S: bytes (trailing NULs kept)
            return {"$scalar": v.dtype.str, "value": self.encode(value, path)}
        if _is_torch_tensor(v):
            t = v.detach().cpu()
            dtype = str(t.dtype).removeprefix("torch.")
            arr = t.float().numpy() if dtype == "bfloat16" else t.numpy()
            key = self.name(path)
            self.tensors[key] = np.ascontiguousarray(arr)
            return {"$torch": key, "dtype": dtype, "shape": list(arr.shape)}
        if isinstance(v, bool):  # bool subclasses are not expected, but be exact
            return bool(v)
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return self.encode(float(v), path)
        if isinstance(v, str):
            return str(v)
        if isinstance(v, (bytes, bytearray, memoryview)):
            return {"$bytes": base64.b64encode(bytes(v)).decode("ascii")}
        if isinstance(v, tuple):
            return {"$tuple": [self.encode(x, f"{path}.{i}") for i, x in enumerate(v)]}
        if isinstance(v, list):
            if type(v) is list and _plain_json(v):
                return v  # what the walk below gives (a label store's 100,000 ids), at a tenth of its time
            return [self.encode(x, f"{path}.{i}") for i, x in enumerate(v)]
        if isinstance(v, Mapping):
            if all(type(k) is str and not k.startswith("$") for k in v):
                return {k: self.encode(x, _join(path, k)) for k, x in v.items()}
            items = []
            for k, x in v.items():
                if not _is_scalar_key(k):
                    raise CheckpointError(f"{path or 'state'}: cannot checkpoint a dict key of type {type(k).__name__}")
                items.append([self.encode(k, path), self.encode(x, _join(path, str(k)))])
            return {"$dict": items}
        raise CheckpointError(
            f"{path or 'state'}: cannot checkpoint a {type(v).__name__}; state must be dicts, lists, "
            "numbers, strings, booleans, None, bytes, numpy arrays or torch tensors"
        )


def _plain_json(items: list, finite: bool = True) -> bool:
    """Whether each of ``items`` is a str, int, bool, None or (``finite``: finite) float, or a list of
    those: what :meth:`_Encoder.encode` writes as itself and :func:`_decode` reads as itself, so the
    list is taken as it is (the decoder reads whatever floats the JSON holds)."""
    for x in items:
        t = type(x)
        if t is float:
            if finite and not math.isfinite(x):
                return False
        elif t is list:
            if not all(type(y) in _JSON_SCALARS for y in x):
                return False
            if finite and not all(math.isfinite(y) for y in x if type(y) is float):
                return False
        elif t not in _JSON_SCALARS:
            return False
    return True


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_scalar_key(k) -> bool:
    return k is None or isinstance(k, (str, int, float, bool, bytes, np.generic)) or (
        isinstance(k, tuple) and all(_is_scalar_key(x) for x in k)
    )


def _is_torch_tensor(v) -> bool:
    torch = _torch_if_loaded()
    return torch is not None and isinstance(v, torch.Tensor)


def _torch_if_loaded():
    import sys

    return sys.modules.get("torch")


def _decode(v: Any, tensors: Mapping[str, np.ndarray], path: str = "") -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, list):
        if _plain_json(v, finite=False):
            return v  # what the walk gives (a label store's 100,000 ids), at a fraction of its time
        return [_decode(x, tensors, path) for x in v]
    if not isinstance(v, dict):
        raise CheckpointError(f"{path or 'state'}: unexpected JSON value of type {type(v).__name__}")
    tags = [k for k in v if k.startswith("$")]
    if not tags:
        return {k: _decode(x, tensors, _join(path, k)) for k, x in v.items()}
    tag = tags[0]
    try:
        if tag == "$array":
            arr = tensors[v["$array"]]
            return arr.reshape(v["shape"]) if "shape" in v else arr  # (1,) -> (): safetensors reads 0-d as (1,)
        if tag == "$torch":
            import torch

            arr = tensors[v["$torch"]].reshape(v["shape"])  # the saved shape ((1,) -> () for a 0-d tensor)
            t = torch.from_numpy(np.array(arr))  # a writable copy
            return t.to(getattr(torch, v["dtype"])) if v["dtype"] == "bfloat16" else t
        if tag == "$float":
            return float(v["$float"])
        if tag == "$scalar":  # what the encoder writes: numbers, booleans, str_ and bytes_ (no void or object
            # dtype: np.dtype("|V1").type(2e9) allocated 2 GB from a file of 200 bytes, review r74 F1)
            dtype = np.dtype(v["$scalar"])
            if dtype.kind not in "biufUS":
                raise CheckpointError(f"{path or 'state'}: a numpy scalar of dtype {dtype} is not state")
            return dtype.type(_decode(v["value"], tensors, path))
        if tag == "$bytes":
            return base64.b64decode(v["$bytes"])
        if tag == "$tuple":
            return tuple(_decode(x, tensors, path) for x in v["$tuple"])
        if tag == "$dict":
            return {_decode(k, tensors, path): _decode(x, tensors, path) for k, x in v["$dict"]}
    except KeyError as e:
        raise CheckpointError(f"{path or 'state'}: broken reference {e} in the checkpoint") from None
    except (TypeError, ValueError, OverflowError) as e:
        raise CheckpointError(f"{path or 'state'}: malformed {tag} entry ({e})") from None
    raise CheckpointError(f"{path or 'state'}: unknown tag {tag!r}; the checkpoint was written by a newer stream-cl")


def encode_state(state: Mapping, meta: Mapping | None = None, digest: bool = True) -> bytes:
    """``state`` (and a small JSON-able ``meta``) as the bytes of a checkpoint file, with the
    SHA-256 of its content in the header (``digest=False``: without, for a caller whose state
    carries its own, as a changelog contribution does).

    >>> raw = encode_state({"W": np.eye(2), "names": ["a", 1]}, meta={"seq": 3})
    >>> state, header = decode_state(raw)
    >>> state["names"], state["W"].shape, header["meta"]
    (['a', 1], (2, 2), {'seq': 3})
    """
    from safetensors.numpy import save

    enc = _Encoder()
    tree = enc.encode(state, "")
    # ASCII: a lone surrogate (a name read with errors="surrogateescape") is a \u escape, which every
    # reader decodes to the same string; as UTF-8 it cannot be written at all
    text = json.dumps(tree, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    header = {"format": FORMAT, "created": repr(time.time()),
              "meta": json.dumps(_plain(meta or {}), allow_nan=False, separators=(",", ":"))}
    if len(text) <= HEADER_TREE_MAX:
        header.update(format_version=str(_version_written(in_tensor=False)), state=text)
    else:
        name = enc.name("$state")  # a name no array of the state holds
        enc.tensors[name] = np.frombuffer(text.encode("ascii"), dtype=np.uint8)  # (n_bytes,)
        header.update(format_version=str(_version_written(in_tensor=True)), **{_TREE_TENSOR_KEY: name})
    if digest:
        header[_DIGEST_KEY] = _content_digest(header, enc.tensors)
    try:
        return save(enc.tensors, metadata=header)
    except Exception as e:  # safetensors' own error type: name it as a checkpoint that cannot be written
        raise CheckpointError(f"state cannot be written as a checkpoint ({type(e).__name__}: {e})") from None


def _version_written(in_tensor: bool) -> int:
    """The format version of a file whose tree is in a tensor (the newest) or in the header (1)."""
    return FORMAT_VERSION if in_tensor else 1


def _content_digest(header: Mapping[str, str], tensors: Mapping[str, np.ndarray]) -> str:
    """SHA-256 (hex) of what a checkpoint decodes to: every header entry but the digest (the state
    and meta JSON, format, created) and every tensor's name, dtype, shape and bytes, in name order.

    It is computed from the values, not the file's bytes, so the writer knows it before safetensors
    lays the file out. Each field is length-prefixed: bytes cannot move from one field to the next.
    """
    h = hashlib.sha256()

    def field(data) -> None:
        h.update(memoryview(data).nbytes.to_bytes(8, "little"))
        h.update(data)

    for key in sorted(k for k in header if k != _DIGEST_KEY):
        field(key.encode("utf-8", "surrogatepass"))
        field(str(header[key]).encode("utf-8", "surrogatepass"))
    for name in sorted(tensors):
        a = tensors[name]
        # kind and size, not dtype.str: "=f8" written reads back as "<f8"; and some safetensors
        # releases read a 0-d tensor back as shape (1,)
        shape = a.shape if a.ndim else (1,)
        field(f"{name}\0{a.dtype.kind}{a.dtype.itemsize}{shape}".encode("utf-8", "surrogatepass"))
        field(np.ascontiguousarray(a))  # already contiguous, written and read: no copy
    return h.hexdigest()


def _verify(source: str, header: Mapping, tensors: Mapping[str, np.ndarray], hint: str) -> None:
    """Refuse content that differs from what was written (a flipped bit on disk or in transit);
    a file without a digest was written before it existed and is not checked."""
    expected = header.get(_DIGEST_KEY)
    if expected is not None and expected != _content_digest(header, tensors):
        raise CheckpointError(f"{source}: corrupt: its content does not match the SHA-256 it was written with{hint}")


def decode_state(raw: bytes, source: str = "state", hint: str = "") -> tuple[dict, dict]:
    """``(state, header)`` from checkpoint bytes; raises :class:`CheckpointError` naming ``source``
    (and ending with ``hint``) if they are not a readable checkpoint. Nothing in them is executed."""
    from safetensors.numpy import load

    try:
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8 : 8 + n]).get("__metadata__") or {}
        if not isinstance(header, dict):
            raise ValueError("metadata is not a mapping")
    except Exception as e:  # truncated, not safetensors
        raise CheckpointError(f"{source}: not a readable checkpoint ({type(e).__name__}: {str(e)[:200]}){hint}") from None
    try:
        tensors = load(bytes(raw))
    except Exception as e:
        raise CheckpointError(f"{source}: not a readable checkpoint ({type(e).__name__}: {str(e)[:200]}){hint}") from None
    # before the header fields and the JSON, which it covers: a flipped bit is named as such, not as
    # another format version (whose fix is to start afresh) or bad JSON
    _verify(source, header, tensors, hint)
    _check_header(source, header, hint)
    try:
        text = tensors.pop(header[_TREE_TENSOR_KEY]).tobytes() if _TREE_TENSOR_KEY in header else header["state"]
        tree = json.loads(text)
        meta = json.loads(header.get("meta", "{}"))
    except (KeyError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{source}: corrupt state tree ({type(e).__name__}: {str(e)[:200]})") from None
    try:
        state = _decode(tree, tensors)
        made = {"format": header["format"], "format_version": int(header["format_version"]),
                "created": float(header.get("created", "nan")), "meta": meta}
    except RecursionError:
        raise CheckpointError(f"{source}: state tree nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as e:  # a header field or a scalar that is not what it says
        raise CheckpointError(f"{source}: corrupt state ({type(e).__name__}: {str(e)[:200]})") from None
    return state, made


def _check_header(path, header: Mapping, hint: str = "") -> None:
    """Refuse another format, or another version of this one. A file with a digest has passed
    :func:`_verify` first: its fields are as written, and a flipped bit in them was named corrupt."""
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a stream-cl checkpoint (format {header.get('format')!r}){hint}")
    try:
        version = int(header.get("format_version", ""))
    except ValueError:
        raise CheckpointError(f"{path}: unreadable format_version {header.get('format_version')!r}{hint}") from None
    if version not in READ_VERSIONS:
        raise CheckpointError(
            f"{path}: checkpoint format_version {version}, this stream-cl reads versions "
            f"{', '.join(map(str, READ_VERSIONS))}; "
            "run the stream-cl release that wrote it, or point checkpoint.dir at an empty directory to start afresh"
        )


def _plain(v):
    """JSON-able copy of small metadata (numpy scalars to Python)."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
