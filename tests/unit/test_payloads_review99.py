"""Review r99: the mapping's named fields are counted however wide the events; a mapping key set
to "" names no field (a pandas CSV's unnamed index column is not the task, time or id); a single
misspelt CSV feature column is refused; a time-feature name clash is refused without a time too;
an integer label or task is held to the 1,024 characters a string is."""

import pytest

from stream_cl import OnlineContinualLearner
from stream_cl.config import ConfigError, MappingConfig
from stream_cl.decode import EventDecoder
from stream_cl.mapping_check import FieldCensus, check_columns
from stream_cl.prequential import Prequential


def test_named_fields_are_counted_past_the_first_200():
    census = FieldCensus(MappingConfig(features=["f10", "f250"]), sample=1)
    census.observe({**{f"f{j}": j for j in range(300)}, "y": 1})
    assert census.take() == []  # was: f250 missing ("did you mean 'f50'?") and y in none of the events


@pytest.mark.parametrize("key", ["task", "timestamp", "id"])
def test_an_empty_name_reads_no_column(key):
    event = EventDecoder(MappingConfig(**{key: ""})).decode_csv_row({"": "7", "a": "1.5", "y": "k"}, b"7,1.5,k", "f:2")
    assert (event.task, event.ts, event.id) == (None, None, None)  # was the index column's 7 as the task/time/id


def test_a_misspelt_single_feature_column_is_refused():
    with pytest.raises(ConfigError, match="mapping.features: no column 'amout'.*did you mean 'amount'"):
        check_columns(MappingConfig(features="amout"), ["amount", "leak", "y"], "d.csv")
    check_columns(MappingConfig(), ["amount", "leak", "y"], "d.csv")  # the default: every column


def test_a_time_feature_name_is_refused_without_a_time_too():
    decoder = EventDecoder(MappingConfig())
    step = Prequential(OnlineContinualLearner(device="cpu", time_features=True))
    _, dead = step.process([decoder.decode_json(b'{"x": {"a": 1, "ts": {"hour_sin": 5.0}}, "y": 0}', "1"),
                            decoder.decode_json(b'{"x": {"a": 2}, "y": 1, "ts": 1714521600}', "2")])
    assert [(d.origin, d.reason) for d in dead] == [("1", "bad_features")]  # its 5.0 had gone into the time column


@pytest.mark.parametrize("field", ["y", "task"])
def test_an_integer_label_or_task_is_held_to_the_text_bound(field):
    decoder = EventDecoder(MappingConfig())
    label = "" if field == "y" else '"y": 1, '
    record = decoder.decode_json(('{"x": {"a": 1}, %s"%s": %s}' % (label, field, "9" * 1025)).encode())
    assert record.reason == "bad_label" and "over 1,024 digits" in record.detail
    assert decoder.decode_json(('{"x": {"a": 1}, "%s": %s}' % (field, "9" * 1024)).encode()).x == {"a": 1.0}


def test_max_depth_is_bounded_and_its_bound_decodes():
    from stream_cl.config import load_config_dict

    with pytest.raises(ConfigError, match=r"mapping.max_depth: must be in \[0, 100\]"):
        load_config_dict({"mapping": {"max_depth": 2000}})  # a record 1,000 deep read as "nested into themselves"
    decoder = EventDecoder(MappingConfig(max_depth=100))
    record = decoder.decode_json(b'{"x": ' + b'{"a": ' * 100 + b"1" + b"}" * 100 + b', "y": 1}')
    assert list(record.x) == [".".join(["a"] * 100)]
