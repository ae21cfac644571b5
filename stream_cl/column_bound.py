"""The ``max_columns`` rule: a ridge head's design width is bounded before anything is learned.

A ridge head keeps a few (columns x columns) float64 matrices, so its width is its memory:
one odd event with a thousand new keys could otherwise take a daemon's memory. An event
whose new inputs would pass the bound is refused with a ``ValueError`` before any state
changes (the daemon's ``rejected_by_model`` dead letter), and a ``hash_width`` past it when
the learner is made. Every learner with ridge heads applies this one rule.

>>> check_columns(293, 293, "4 inputs would give")
>>> check_columns(302, 293, "5 inputs would give", "the 'all' head")
Traceback (most recent call last):
...
ValueError: 5 inputs would give the 'all' head 302 design columns, over max_columns (293): its matrices would take 0.0 GiB each. Use a smaller hash_width, fewer inputs or key_units, or a larger max_columns if the memory is there
>>> check_columns(10**6, None, "anything")  # None: no bound
>>> check_bound("10")
Traceback (most recent call last):
...
ValueError: max_columns must be an int >= 1 or None, got '10'; use e.g. 8192
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .checks import check_int

__all__ = ["ColumnRoom", "RoomFactory", "check_bound", "check_columns", "check_held_back", "single_design_room"]


def check_bound(bound) -> None:
    """Refuse a ``max_columns`` that is neither an int >= 1 nor ``None`` (no bound), naming it: the
    learners take it in ``__init__``, and a string would fail only at the first event."""
    check_int(bound, "max_columns", 1, 8192, optional=True)


def check_columns(width: int, bound: int | None, what: str, head: str = "the head") -> None:
    """A ``ValueError`` if a head ``width`` columns wide passes ``bound`` (``None``: no bound);
    ``what`` says what gives that width ("5 inputs would give", "hash_width=4096 gives")."""
    if bound is None or width <= bound:
        return
    raise ValueError(
        f"{what} {head} {width:,} design columns, over max_columns ({bound:,}): its matrices would take "
        f"{8 * width**2 / 2**30:.1f} GiB each. Use a smaller hash_width, fewer inputs or key_units, or a larger "
        "max_columns if the memory is there")


def check_network_inputs(hash_width, bound: int | None) -> None:
    """A ``ValueError`` if a network whose first layer takes ``hash_width`` hashed inputs passes ``bound``
    (``None``: no bound): every event would be refused at learn time (its inputs over ``max_columns``),
    so it is refused where the learner is made. A ``hash_width`` that is not an int is left to the
    feature index, which names it."""
    if bound is None or type(hash_width) is not int or hash_width <= bound:
        return
    raise ValueError(f"hash_width={hash_width:,} gives the network's first layer {hash_width:,} inputs, over "
                     f"max_columns ({bound:,}), and every event would be refused; use a smaller hash_width or a "
                     "larger max_columns")


class ColumnRoom:
    """The columns each of a learner's designs may still take within ``max_columns``, drawn down as one
    vectorisation makes columns (:class:`stream_cl.features.FeatureIndex`). A category whose own column
    would not fit goes to its feature's shared ``k=<other>`` column, as one past ``max_categories`` does,
    instead of its event being refused: with many high-cardinality features the bound is reached long
    before any feature has ``max_categories`` columns, and every later event with a new value was refused.

    ``left()``: each design's columns left (the bound minus its width), asked at the first column made,
    as most events make none; ``cost(kind)``: the columns one new input of that kind adds to each design.
    :attr:`kept`: columns held back for the shared columns that features with categories of their own may
    still need (the feature index keeps the count), so every such feature can always overflow.

    >>> room = ColumnRoom(lambda: [3, 5], lambda kind: (1, 2))  # two designs; an input adds 1 and 2 columns
    >>> room.ready(lambda: 1)  # one feature may still need its shared column
    >>> room.fits(0), room.take(0), room.left, room.fits(0)
    (True, None, [2, 3], True)
    >>> room.take(0); room.left, room.fits(0), room.fits(0, keep=-1)  # 1 - 2 < 0 in the second design
    ([1, 1], False, False)
    """

    def __init__(self, left: Callable[[], Sequence[int]], cost: Callable[[int], Sequence[int]]):
        self._left, self.cost = left, cost
        self.left: list[int] | None = None
        self.kept = 0
        # the learner's own check of new inputs (``_check_new``), where a learning step asks for it: called
        # with the new inputs so far as soon as a learned event's input passes the bound, so that its
        # ValueError comes before the event's other keys are indexed and its rows laid out (review r109)
        self.refuse: Callable | None = None

    def past(self) -> bool:
        """Whether some design is wider than the bound (an input was counted past it)."""
        return min(self.left) < 0

    def ready(self, kept: Callable[[], int]) -> None:
        """The columns left and ``kept()``, read once, at the first column a vectorisation makes."""
        if self.left is None:
            self.left, self.kept = list(self._left()), int(kept())

    def fits(self, kind: int, keep: int = 0) -> bool:
        """Whether an input of ``kind`` fits every design with :attr:`kept` ``+ keep`` columns held back."""
        return all(n - c >= self.kept + keep for n, c in zip(self.left, self.cost(kind)))

    def take(self, kind: int, keep: int = 0) -> None:
        """Count an input of ``kind`` made, and ``keep`` more (or fewer) columns held back. Past the bound
        too: the learner's own check then refuses the event, as it refuses new numeric inputs there."""
        self.left = [n - c for n, c in zip(self.left, self.cost(kind))]
        self.kept += keep

    def save(self) -> tuple:
        """``(left, kept)`` as they are now (a copy), for :meth:`restore` after an event that only predicts."""
        return (None if self.left is None else list(self.left)), self.kept

    def restore(self, saved: tuple) -> None:
        """Put back what :meth:`save` returned."""
        self.left, self.kept = (None if saved[0] is None else list(saved[0])), saved[1]


def check_held_back(new, bound: int | None) -> None:
    """A ``ValueError`` if the new inputs ``new`` (a :class:`~stream_cl.features.NewColumns`) include one
    that would take a column :class:`ColumnRoom` holds back for a category feature's ``k=<other>``."""
    crowding = getattr(new, "crowding", ())
    if crowding:
        raise ValueError(
            f"new input {crowding[0]!r} would take one of the last columns within max_columns ({bound:,}), held back "
            "for the k=<other> column of features with categories of their own. Use a smaller hash_width, fewer "
            "inputs, or a larger max_columns if the memory is there")


# what a learner hands its feature index: called at a vectorisation's first new key (None: no bound)
RoomFactory = Callable[[], "ColumnRoom | None"]


def single_design_room(bound: int | None, width: Callable[[], int]) -> ColumnRoom | None:
    """The room of a learner with one design ``width()`` columns wide that grows by one per input (the
    analytic head's ``1 + inputs``, a network's first layer); ``None`` without a bound."""
    if bound is None:
        return None
    return ColumnRoom(lambda: [bound - width()], lambda kind: (1,))
