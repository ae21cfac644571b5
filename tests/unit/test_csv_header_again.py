"""Review r55 F2: a CSV header met again within the file (files joined with ``cat``, plain or gzip, a BOM
before the second; a writer appending its header with each batch of rows, pandas ``to_csv(mode="a")``) was
learned as a row whose label is the label column's name (the class ``'label'``), and one with its columns in
another order had every row after it read with two columns swapped, silently (accuracy 0.985 -> 0.822).
It is now a header: no row, the rows after it read in its order, with a warning."""

from __future__ import annotations

import gzip

import pytest

from connectors.files import FileSource
from stream_cl.config import MappingConfig
from stream_cl.events import DeadLetter, Event


def _rows(header: list[str], n: int, start: int) -> str:
    out = [",".join(header)]
    for i in range(start, start + n):
        values = {"id": f"e{i}", "amount": str(i), "score": str(-i), "label": "ok" if i % 2 else "fraud"}
        out.append(",".join(values[c] for c in header))
    return "\n".join(out) + "\n"


def _read(path) -> tuple[list[Event], list[DeadLetter], list[str]]:
    source = FileSource(str(path), MappingConfig(label="label"))
    records = source.poll(1000)
    return ([r for r in records if type(r) is Event], [r for r in records if type(r) is DeadLetter],
            source.take_warnings())


def test_a_header_again_within_the_file_is_no_row(tmp_path):
    path = tmp_path / "days.csv.gz"
    with gzip.open(path, "wt") as f:  # two days' exports joined, the second with Excel's byte-order mark
        f.write(_rows(["id", "amount", "score", "label"], 3, 0) + "\ufeff" + _rows(["id", "amount", "score", "label"], 3, 3))
    events, dead, warnings = _read(path)
    assert [e.y for e in events] == ["fraud", "ok", "fraud", "ok", "fraud", "ok"] and dead == []
    assert warnings == [f"{path}:5: the header again (files joined, or a writer that appends its header with its "
                        "rows): read as a header, not a row; said once"]


def test_rows_after_a_header_in_another_order_are_read_in_its_order(tmp_path):
    path = tmp_path / "days.csv"
    path.write_text(_rows(["id", "amount", "score", "label"], 2, 0) + _rows(["id", "score", "amount", "label"], 2, 2))
    events, dead, warnings = _read(path)
    assert [(e.x["amount"], e.x["score"]) for e in events] == [(0.0, 0.0), (1.0, -1.0), (2.0, -2.0), (3.0, -3.0)]
    assert len(warnings) == 1 and "the header again, with its columns in another order (id, score, amount, label" in warnings[0]


# -- review r66 F1: a header of other columns within the file -----------------------------------------------
def test_a_header_with_a_renamed_column_within_the_file_is_used_for_the_rows_after_it(tmp_path):
    """Two exports joined after ``score`` was renamed ``risk``: the second header was read as a row, a learned
    event whose label was ``'label'``, and the rows after it under the old names."""
    path = tmp_path / "days.csv"
    path.write_text(_rows(["id", "amount", "score", "label"], 2, 0)
                    + "\ufeff" + _rows(["id", "amount", "score", "label"], 2, 2).replace("score", "risk", 1))
    events, dead, warnings = _read(path)
    assert [e.y for e in events] == ["fraud", "ok", "fraud", "ok"] and dead == []
    assert [sorted(e.x) for e in events] == [["amount", "score"]] * 2 + [["amount", "risk"]] * 2
    assert warnings == [f"{path}:4: a header of other columns within the file (id, amount, risk, label; before: "
                        "id, amount, score, label): the rows after it are read under it (said once for each header)"]


def test_a_header_of_another_number_of_columns_within_the_file_stays_a_wrong_count_dead_letter(tmp_path):
    """Loud, not learned: it and the rows after it are dead letters, as before."""
    path = tmp_path / "days.csv"
    path.write_text(_rows(["id", "amount", "label"], 1, 0) + _rows(["id", "amount", "score", "label"], 1, 1))
    events, dead, warnings = _read(path)
    assert [e.id for e in events] == ["e0"] and warnings == []
    assert [d.detail for d in dead] == ["row has 4 cells, the header has 3 columns"] * 2


@pytest.mark.parametrize("text", [
    "smoker,y\nn,n\ny,n\nn,y\ny,y\nn,n\n",  # y/n answers under a label column named y (review r68 M1)
    "a,b,c,y\na,b,c,y\nb,a,c,n\nc,c,a,y\na,c,b,n\n",  # categories named as the columns are
    "id,amount,label\ne9,label,label\nid,amount,ok\n",  # the label's name as a label; names out of place
], ids=["y-n-answers", "categories-named-as-columns", "out-of-place"])
def test_rows_of_text_that_hold_column_names_stay_rows(tmp_path, text):
    path = tmp_path / "rows.csv"
    path.write_text(text)
    events = FileSource(str(path), MappingConfig(label=text.split("\n")[0].split(",")[-1])).poll(100)
    header_again = text.split("\n")[0] in text.split("\n")[1:]  # (a row that is the header is one, as before)
    assert all(type(e) is Event for e in events) and len(events) == text.count("\n") - 1 - header_again


def test_a_header_within_the_file_that_cannot_be_used_makes_it_and_the_rows_after_it_dead_letters(tmp_path):
    path = tmp_path / "days.csv"
    path.write_text(_rows(["id", "amount", "label"], 1, 0) + "id,id,label\ne1,1,ok\n")
    events, dead, warnings = _read(path)
    assert [e.id for e in events] == ["e0"]
    assert [d.detail for d in dead] == [
        f"header not used: source.path: {path}:3: the CSV header repeats column 'id'; give each column its own name",
        f"row of a file whose header could not be used (source.path: {path}:3: the CSV header repeats column "
        "'id'; give each column its own name)"]
    assert len(warnings) == 1 and "the rows after it are dead letters" in warnings[0]
