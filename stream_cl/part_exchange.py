"""Moving parts between learners: a partition's part exported as a contribution, and merged.

:meth:`PartExchange.contribution` exports a partition's part (:class:`~stream_cl.contribution.Contribution`);
:meth:`PartExchange.merge` installs or replaces it, aligning inputs and classes by name, and
refuses one of another model (:meth:`PartExchange._identity`). See :mod:`stream_cl.parts`.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Hashable, Mapping

import numpy as np

from .backbones.base import Backbone
from .contribution import Contribution, ContributionError
from .features import kind_clash
from .part_stats import Part, PartStats, check_partition, classes_with_rows, install

__all__ = ["PartExchange", "check_identity", "exact_backbone", "layout_positions", "learner_identity"]

# Settings members of one model may differ in: they pick hardware or bound memory, and leave
# the model's arithmetic alone ("backbone" is compared as the backbone's own identity). A
# contribution written while one of them was still a setting merges all the same.
_NOT_MODEL_SETTINGS = ("device", "backbone", "max_columns")


class PartExchange:
    """Exports and imports partitions' parts, for :class:`~stream_cl.parts.PartitionedLearner`,
    which provides, beside what it documents itself (``_ridge_heads()``, ``_layout(i, names, kinds)``,
    ``_get_local()`` / ``_set_local(local)`` / ``_fresh_local()``, ``_local_state(local)`` /
    ``_local_from_state(state, rows, width)``, ``index_``):

    ``_parts`` (partition to :class:`~stream_cl.part_stats.Part`), ``_active`` (the partition
    swapped in), ``_multi`` (several parts: the heads hold their sums), ``_active_learned`` and
    ``_memo`` (set by a merge), ``_go_multi()`` and ``_serve_sums()`` (the served sums),
    ``_get_params()`` (River's: the settings compared by :meth:`_identity`) and, when it has
    one, ``backbone_`` (compared by its ``identity()``). A learner whose local state holds
    statistics indexed by design columns overrides :meth:`_align_local`, and one whose design
    columns depend on the inputs' positions overrides :meth:`_positional_inputs`.
    """

    def _positional_inputs(self) -> bool:
        """Whether some design column depends on where the inputs sit, not only on their names (a
        backbone with fixed input slots): a part then merges only where its inputs sit in the same
        columns here."""
        return False

    def _align_local(self, local: dict, theirs: tuple, mine: tuple) -> None:
        """Move the parts of ``local`` (a contribution's local state, from ``_local_from_state``) that
        are indexed by design columns from the exporter's layout (its inputs ``theirs``: names and
        kinds) to this learner's once it has adopted them (``mine``), by column name; a
        ``ContributionError`` for a state that does not fit. Nothing such by default."""

    def _identity(self, canonical: bool = False) -> dict:
        """:func:`learner_identity` of this learner."""
        return learner_identity(self, canonical)

    def _check_identity(self, saved: Mapping | None) -> None:
        """:func:`check_identity` of this learner."""
        check_identity(self, saved)

    # -- contributions ------------------------------------------------------------------------
    def contribution(self, partition: Hashable, offset: int | None = None, pending=None) -> Contribution:
        """Partition ``partition``'s part (``offset``: the next source offset it covers;
        ``pending``: what the caller keeps with it). A partition this learner holds no part of
        has learned nothing here (its events, if any, were predicted only: a part is made by
        learning): its part is empty (no statistics, no local state, no events), and the
        daemon's changelog still carries its offset and waiting events."""
        check_partition(partition)  # a NaN key named no part and gave an empty one (review r90)
        heads = self._ridge_heads()
        part = self._parts.get(partition)
        if part is None:
            stats, local, part = [PartStats(h.la) for h in heads], None, Part()
        else:
            stats = part.stats if self._multi else [PartStats.from_head(h) for h in heads]
            local = self._get_local() if partition == self._active else part.local
        return Contribution(
            identity=self._identity(), partition=partition,
            inputs={"names": list(self.index_.names), "kinds": np.array(self.index_.kinds, dtype=np.int8),
                    "hash_width": self.index_.hash_width, "categorical": list(self.index_.categories)},
            heads=[{**_packed(s.state_dict()), "classes": list(h.classes),
                    # the classes its own events brought (kept apart from the statistics a drift reset renews;
                    # in the first head's entry, where an older reader ignores it)
                    **({"partition_classes": list(part.classes)} if i == 0 else {})}
                   for i, (s, h) in enumerate(zip(stats, heads))],
            local=self._local_state(local) if local else None, offset=offset, pending=pending, events=part.events)

    def merge(self, partition: Hashable, contribution: "Contribution | bytes", resum: bool = True) -> "PartExchange":
        """Install or replace partition ``partition``'s part with ``contribution`` (or its bytes).

        ``resum=False`` leaves the served heads as they are (several merges in a row, then one
        :meth:`resum`: the daemon's fold); until then the learner is not to be used: a merged part that
        brings new inputs or classes leaves the served heads narrower than the index, and rows learned
        before the :meth:`resum` are summed into stale exact heads.
        Raises :class:`~stream_cl.contribution.ContributionError`, changing nothing, for a
        contribution of another learner kind, settings or backbone, one that is corrupt, or one
        holding an input that this learner holds as the other kind of column (a number here, a
        category's indicator there, or the reverse: one learner refuses such an event).
        """
        check_partition(partition)  # before anything changes: an unhashable key failed half way (review r90)
        c = Contribution.coerce(contribution)
        try:
            checked = self._checked(partition, c)
        except ContributionError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as e:
            # a part whose digest holds (anyone can compute one) but whose fields are not a learner's: refused,
            # changing nothing, where a KeyError or TypeError stopped the daemon at every start (review r74 F1)
            raise ContributionError(f"contribution of partition {partition!r} is malformed ({type(e).__name__}: "
                                    f"{str(e)[:200]})") from None
        return self._merged(partition, c, resum, *checked)

    def _checked(self, partition: Hashable, c: "Contribution") -> tuple:
        """:meth:`merge`'s checks of ``c``, before any change: what :meth:`_merged` needs of it."""
        theirs, ident = _comparable(c.identity, self._identity())
        if theirs != ident:
            raise ContributionError(f"contribution of partition {partition!r} was made by {_describe(theirs, ident)}; "
                                    f"this learner is {_describe(ident, theirs)}")
        heads = self._ridge_heads()
        if len(c.heads) != len(heads):
            raise ContributionError(f"contribution has {len(c.heads)} heads, this learner {len(heads)}")
        names, kinds = list(c.inputs["names"]), [int(k) for k in np.asarray(c.inputs["kinds"]).tolist()]
        if c.inputs.get("hash_width") != self.index_.hash_width or len(kinds) != (
                len(names) if self.index_.hash_width is None else self.index_.hash_width):
            raise ContributionError("contribution's inputs do not match this learner's index (hash_width or kinds)")
        clash = kind_clash(self.index_, names, kinds)
        if clash is not None:  # summed, a number's statistics and 0/1 hits would mean neither
            raise ContributionError(f"contribution of partition {partition!r} does not fit: {clash} (a number and a "
                                    "category's indicator never share an input); rename the feature of one of them")
        incoming = [PartStats.from_state(h.la, _unpacked(s)) for h, s in zip(heads, c.heads)]  # validated before any change
        for i, (h, s, st) in enumerate(zip(heads, c.heads, incoming)):
            if st.B.shape[1] > len(s["classes"]) or st.A.shape[0] > len(self._layout(i, names, kinds)):
                raise ContributionError("contribution's statistics do not match its inputs and classes")
        # where the exporter's inputs go here (names this learner lacks append in their order, as adopt does)
        width = self.index_.width
        adopted = (list(self.index_.names), list(self.index_.kinds))  # this learner's inputs once adopted
        if self.index_.hash_width is None:
            pos = {n: i for i, n in enumerate(self.index_.names)}
            for n, k in zip(names, kinds):
                if n not in pos:
                    pos[n] = len(pos)
                    adopted[0].append(n)
                    adopted[1].append(k)
            rows_in, width = np.array([pos[n] for n in names], dtype=np.int64), len(pos)
            moved = [n for i, n in enumerate(names) if pos[n] != i]
            if moved and self._positional_inputs():
                raise ContributionError(
                    f"contribution of partition {partition!r} met its inputs in another order (input {moved[0]!r} is "
                    f"column {names.index(moved[0])} there, {pos[moved[0]]} here), and this learner's backbone "
                    "takes inputs by position: fix the inputs' order for every member (a numeric mapping.features "
                    "list, or hash_width for string features)")
        else:
            rows_in = np.arange(len(kinds))
        local = self._fresh_local()
        if c.local is not None:
            local = self._local_from_state(c.local, rows_in, width)
            self._align_local(local, (names, kinds), adopted)
        # what the changes below take as given: hashable classes and names, a count of events
        categorical = list(c.inputs.get("categorical", ()))  # absent in older contributions
        for s in c.heads:
            {*s["classes"], *(s.get("partition_classes") or ())}  # noqa: B018 -- a TypeError for an unhashable one
        {*categorical}  # noqa: B018
        if type(c.events) is not int or c.events < 0:
            raise ContributionError(f"contribution's event count is not a count ({c.events!r})")
        return heads, names, kinds, incoming, local, categorical

    def _merged(self, partition: Hashable, c: "Contribution", resum: bool, heads, names, kinds, incoming, local,
                categorical) -> "PartExchange":
        """:meth:`merge`'s changes, once :meth:`_checked` passed."""
        # from here on the learner changes: align inputs and classes by name
        self.index_.adopt(names, kinds, categorical)
        mine_names, mine_kinds = list(self.index_.names), self.index_.kinds
        aligned = []
        for i, (h, s, st) in enumerate(zip(heads, c.heads, incoming)):
            h.add_classes(list(s["classes"]))
            mine = self._layout(i, mine_names, mine_kinds)
            rows = layout_positions(self._layout(i, names, kinds)[: st.A.shape[0]], mine)
            cols = layout_positions(list(s["classes"])[: st.B.shape[1]], list(h.classes))
            aligned.append(st.aligned(rows, len(mine), cols, len(h.classes)))
        self._memo = None
        met = c.heads[0].get("partition_classes") if c.heads else None
        if met is None:  # a contribution from before they were kept: what its statistics show
            met = classes_with_rows(heads[0].classes, aligned[0].counts) if heads else []
        if not self._parts or (not self._multi and partition == self._active):
            # the only part: the heads are its statistics
            self._parts = {partition: Part(events=c.events, classes=met)}
            self._active = partition
            for h, st in zip(heads, aligned):
                install(h, [st])
            self._set_local(local)
            self._active_learned = c.events > 0
            return self
        if not self._multi:
            self._go_multi()
        for st in aligned:  # one of several parts: its heads' anchor is the served sum's (as in _go_multi)
            st.anchor = None
        part = self._parts.get(partition) or Part()
        part.stats, part.events = aligned, c.events
        part.set_classes(met)
        self._parts[partition] = part
        if partition == self._active:
            self._set_local(local)
            for head, stats in zip(heads, aligned):
                head.part = stats
            self._active_learned = c.events > 0
        else:
            part.local = local
        if resum:
            self._serve_sums()
        return self


_WHOLE = re.compile(r"(?<![\w.])(-?\d+)\.0(?![\w.])")  # a whole number written as a float: "8.0", not "1.05"
_QUOTED = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")  # a string's repr: left as it is


def _as_written(canonical) -> str:
    """A :func:`_canonical` setting with its whole numbers as ints (not within its strings).

    >>> _as_written("8.0"), _as_written("{'bandwidth': 1.5, 'width': 256.0}"), _as_written("1e-05"), _as_written("1.05")
    ('8', "{'bandwidth': 1.5, 'width': 256}", '1e-05', '1.05')
    >>> _as_written("{'path': 'model 2.0', 'seed': 3.0}")
    "{'path': 'model 2.0', 'seed': 3}"
    """
    parts = _QUOTED.split(str(canonical))  # (odd positions: the strings)
    return "".join(p if i % 2 else _WHOLE.sub(r"\1", p) for i, p in enumerate(parts))


def _canonical(value) -> str:
    """``value`` written so that equal settings read the same: numbers as floats, sequences as tuples,
    mappings sorted, River estimators (replay, drift, homeostasis parts) as their kind and parameters.

    >>> _canonical([(1, "all")]) == _canonical(((1.0, "all"),)), _canonical({"b": 2, "a": np.float64(1)})
    (True, "{'a': 1.0, 'b': 2.0}")
    """
    if value is None or isinstance(value, (bool, str)):
        return repr(value)
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_canonical(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, Mapping):
        items = sorted(((_canonical(k), _canonical(v)) for k, v in value.items()))
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if isinstance(value, (set, frozenset)):  # (their repr's order follows the process's string hashes)
        return "{" + ", ".join(sorted(_canonical(v) for v in value)) + "}"
    if hasattr(value, "_get_params") and not isinstance(value, type):
        return type(value).__name__ + _canonical(value._get_params())
    if callable(value) and hasattr(value, "__qualname__") and not isinstance(value, type):
        # a function: its name, not its address (a class keeps its repr, as River's nested settings, a
        # (class, params) pair, have always been spelled in checkpoints)
        return f"{getattr(value, '__module__', None)}.{value.__qualname__}"
    return repr(value)


def learner_identity(learner, canonical: bool = False) -> dict:
    """What parts of one model must share: the learner's kind, settings (not those that leave
    the model's arithmetic alone: the device, the ``max_columns`` bound) and backbone.
    ``canonical``: each setting written so that equal values read the same (:func:`_canonical`:
    ``1`` and ``1.0``, a list and a tuple, dicts in any order); what a state keeps (contributions
    keep each setting's ``repr``, as members of a group have always compared them). One rule for
    every learner's checkpoints and parts (:class:`PartExchange`,
    :class:`~stream_cl.trainable_state.TrainableState`).

    The backbone is kept twice: ``backbone``, its ``identity()`` (River's display of its
    hyperparameters, which every release compares), and the setting ``backbone``, its exact form
    (:func:`exact_backbone`), which that display rounds (``bandwidth`` 5e-5 and 5.4e-5 display
    alike). Releases before this one leave the setting ``backbone`` out of what they compare
    (``_NOT_MODEL_SETTINGS``), so a part written now still merges in a member of an older release
    during a rolling upgrade; this release compares it where a state has one (:func:`_comparable`)."""
    backbone = getattr(learner, "backbone_", None)
    spell = _canonical if canonical else repr
    settings = {k: spell(v) for k, v in learner._get_params().items() if k not in _NOT_MODEL_SETTINGS}
    if backbone is not None:
        settings["backbone"] = exact_backbone(backbone)
    return {"kind": type(learner).__name__, "backbone": backbone.identity() if backbone is not None else None,
            "settings": settings}


def exact_backbone(backbone) -> str:
    """A backbone by its kind and exact hyperparameters (:func:`_canonical`: floats by ``repr``,
    functions by name, sets sorted), or by its own ``identity()`` where it defines what makes it
    (a torch module's weights).

    >>> from stream_cl.backbones import RandomFeatures
    >>> exact_backbone(RandomFeatures(width=8, kind="fourier", bandwidth=5.4e-5))
    "RandomFeatures{'bandwidth': 5.4e-05, 'kind': 'fourier', 'seed': 0.0, 'width': 8.0}"
    """
    if type(backbone).identity is not Backbone.identity:
        return backbone.identity()
    return _canonical(backbone)


def check_identity(learner, saved: Mapping | None) -> None:
    """Refuse the state of a learner whose :func:`learner_identity` (``saved``, kept in its state)
    differs from ``learner``'s, naming the settings. A setting the state does not name is newer than
    it: not compared (its default keeps the behaviour of then); a state without one is not compared.
    Loaded anyway, another backbone's weights ran as this one's, another view order broke every
    later learn, other settings went on silently."""
    if saved is None:
        return
    theirs, mine = _comparable(saved, learner_identity(learner, canonical=True))
    mine["settings"] = {k: v for k, v in mine["settings"].items() if k in (theirs.get("settings") or {})}
    if theirs != mine:
        raise ValueError(f"checkpoint and learner differ in settings: the checkpoint's learner is "
                         f"{_describe(theirs, mine)}, this one {_describe(mine, theirs)}: build the learner "
                         "with the checkpoint's settings")


def _comparable(saved: Mapping, mine: dict) -> tuple[dict, dict]:
    """A saved identity and this learner's (:func:`learner_identity`), as they are compared: the
    model's settings alone (:func:`_model_identity`), the backbone's exact form only where the saved
    one keeps it (written by this release on)."""
    theirs, mine = _model_identity(dict(saved)), _model_identity(mine)
    if "backbone" not in (theirs.get("settings") or {}):
        (mine.get("settings") or {}).pop("backbone", None)
    return theirs, mine


def _model_identity(identity: dict) -> dict:
    """``identity`` without the settings that are not the model's (``_NOT_MODEL_SETTINGS``), but
    with the backbone's exact form (:func:`learner_identity`) where it keeps one: a setting
    ``backbone`` that is not its display form (releases that kept the backbone as a setting wrote
    that), nor its torch module's hash (the two are one)."""
    settings = identity.get("settings")
    if not isinstance(settings, dict):
        return identity
    kept = {k: v for k, v in settings.items() if k not in _NOT_MODEL_SETTINGS}
    exact = settings.get("backbone")
    if exact is not None and exact != identity.get("backbone"):
        kept["backbone"] = exact
    return {**identity, "settings": kept}


def _packed(state: dict) -> dict:
    """A part's statistics as a contribution carries them: X'X by its upper triangle (half the bytes)."""
    A = state.pop("A")
    return {**state, "A_upper": A[np.triu_indices(A.shape[0])]}


def _unpacked(state) -> dict:
    try:
        B, upper = np.asarray(state["B"]), np.asarray(state["A_upper"], dtype=np.float64)
        d = B.shape[0]
        if upper.shape != (d * (d + 1) // 2,):
            raise ContributionError(f"X'X has {upper.size} upper-triangle values for {d} design columns")
        A = np.zeros((d, d))
        A[np.triu_indices(d)] = upper
        A = A + np.triu(A, 1).T  # mirror the strict upper triangle
        return {**state, "A": A}
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise ContributionError(f"contribution's head statistics are malformed ({type(e).__name__}: {e})") from None


def layout_positions(names: list, mine: list) -> np.ndarray:
    """Where each of ``names`` is in ``mine``, -1 where it is not: a category among the first
    KEYED_CATEGORIES of its feature where the part was learned (a block of design columns) and
    a later one here (no block) after the two met the feature's values in other orders."""
    pos = {n: i for i, n in enumerate(mine)}
    return np.array([pos.get(n, -1) for n in names], dtype=np.int64)


def _describe(identity: dict, other: dict) -> str:
    """``identity``'s kind, and where it differs from ``other``: its backbone and settings, as a user writes
    them (the state keeps every number as a float: ``key_units=8.0`` was said, which the learner refuses).
    A backbone said once is not said again as its exact setting (review r121 F4)."""
    out = str(identity.get("kind"))
    skip = set()
    if identity.get("backbone") != other.get("backbone"):
        out += " with backbone " + " ".join(str(identity.get("backbone")).split())
        skip.add("backbone")
    mine, theirs = identity.get("settings") or {}, other.get("settings") or {}
    diff = [f"{k}={_as_written(mine.get(k))}" for k in sorted(set(mine) | set(theirs), key=str)
            if k not in skip and mine.get(k) != theirs.get(k)]
    if diff and identity.get("kind") == other.get("kind"):
        out += " with " + ", ".join(diff)
    return out
