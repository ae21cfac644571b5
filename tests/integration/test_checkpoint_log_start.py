"""A restart from a checkpoint older than the topic's first remaining record (review 22, r7 F1).

The scenario: a daemon checkpoints at about 1000, 2000 and 3000 events and commits 3000; the
newest checkpoints are moved away (what the corrupt-file error tells an operator to do), so the
restart resumes from the oldest; retention (here delete-records) has meanwhile removed the records
between that checkpoint and a later offset; 1000 more events arrive. The checkpoint's offset is
out of range then. The consumer fell back to ``auto_offset_reset``: with ``"latest"`` it jumped to
the end and never predicted nor learned the 1000 new events (exit 0, nothing logged); with
``"earliest"`` it lost nothing more, but the deleted records were silently not learned. The
restart must resume at the first remaining record and log what was deleted, whatever
``auto_offset_reset`` says: that setting is for partitions with neither a checkpoint nor a
committed offset.
"""

from __future__ import annotations

import json
import random

import pytest
from daemon_kit import wait_for
from kafka import TopicPartition

from stream_cl.checkpoint import CheckpointStore, load_checkpoint

N_OLD, N_FIRST, N_MORE = 1000, 3000, 1000  # the old checkpoint's offset, the committed offset, events after it


def _event(i: int, rng: random.Random) -> tuple[str, dict]:
    x = {"f0": rng.gauss(0.0, 1.0), "f1": rng.gauss(0.0, 1.0)}
    return str(i), {"id": i, "x": x, "y": "p" if x["f0"] > x["f1"] else "n"}


@pytest.mark.parametrize(("reset", "deleted_past_commit"), [
    ("latest", False),  # the checkpoint is below the log start, the committed offset is not
    ("earliest", False),
    ("latest", True),  # the committed offset is below the log start too: what remains is still read
])
def test_a_checkpoint_below_the_log_start_resumes_at_the_first_remaining_record(kafka_kit, reset, deleted_past_commit):
    rng = random.Random(22)
    events = [_event(i, rng) for i in range(N_FIRST + N_MORE)]
    topic, preds_topic = kafka_kit.topic("logstart"), kafka_kit.topic("logstart-pred")
    kafka = {"predictions_topic": preds_topic, "stop_at_end": True, "max_poll_records": 100,
             "auto_offset_reset": "earliest"}
    sections = {"changelog": {"enabled": False},  # the local checkpoint is the only state
                "checkpoint": {"every_events": 1000, "every_seconds": 3600.0, "keep": 10}}
    config = kafka_kit.config("logstart", [topic], kafka=kafka, **sections)
    store = CheckpointStore(kafka_kit.folder / "logstart-ckpt")
    # two runs, each checkpointing at its end: at N_OLD, then at N_FIRST (also committed)
    kafka_kit.produce(topic, events[:N_OLD], partition=0)
    first = kafka_kit.start(config, name="first")
    assert first.wait(timeout=120) == 0, first.log()[-3000:]
    old = store.latest()
    assert [o for _, _, o in load_checkpoint(old)[0]["offsets"]] == [N_OLD]
    kafka_kit.produce(topic, events[N_OLD:N_FIRST], partition=0)
    again = kafka_kit.start(config, name="again")
    assert again.wait(timeout=120) == 0, again.log()[-3000:]
    group = f"it-logstart-{kafka_kit.tag}"
    assert wait_for(lambda: kafka_kit.committed(group, topic).get(0) == N_FIRST, 30, "the committed offset")
    # the newer checkpoints "moved away": the restart resumes from the old one, below the committed offset
    for _, path in store.list():
        if path != old:
            path.unlink()

    kafka_kit.produce(topic, events[N_FIRST:], partition=0)
    # records deleted: up to between the checkpoint and the committed offset, or past the committed offset
    log_start = N_FIRST + N_MORE // 2 if deleted_past_commit else (N_OLD + N_FIRST) // 2
    kafka_kit.admin.delete_records({TopicPartition(topic, 0): log_start})

    second = kafka_kit.start(kafka_kit.config("logstart", [topic], kafka={**kafka, "auto_offset_reset": reset},
                                              **sections), name="second")
    assert second.wait(timeout=120) == 0, second.log()[-3000:]

    # every event from the log start on is predicted once (the first run predicted all before N_FIRST);
    # those the group had handled are re-learned silently, not predicted again
    preds = kafka_kit.reader(preds_topic)
    expected = list(range(N_FIRST)) + list(range(max(N_FIRST, log_start), N_FIRST + N_MORE))
    preds.read_to_end(60)  # the daemon has exited: what it committed is all there is
    ids = sorted(int(r.key) for r in preds.records)
    assert ids == expected, (f"{len(ids)} predictions, {len(expected)} expected; "
                             f"missing {sorted(set(expected) - set(ids))[:3]}...; {second.log()[-2000:]}")
    # and learned once: the checkpoint's rows, then every remaining record after it
    state, _ = store.load_latest()
    assert state["model"]["head"]["ridge"]["n_rows"] == N_OLD + N_FIRST + N_MORE - log_start

    # the deleted range is logged, with what was not learned and what was never predicted
    lines = [json.loads(line) for line in second.log().splitlines() if '"checkpoint_below_log_start"' in line]
    assert len(lines) == 1, second.log()[-3000:]
    (line,) = lines
    assert line["level"] == "WARNING" and line["partition"] == f"{topic}/0"
    assert (line["checkpoint_offset"], line["log_start"], line["committed"]) == (N_OLD, log_start, N_FIRST)
    assert line["not_learned"] == f"{N_OLD}..{min(log_start, N_FIRST) - 1}"
    assert line.get("never_handled") == (f"{N_FIRST}..{log_start - 1}" if deleted_past_commit else None)
    assert f"{topic}/0" in line["detail"] and "retention" in line["detail"]
