"""Live daemons answer /healthz, /readyz and /model as documented, and log lifecycle events only.

Two daemons share a consumer group and a one-partition topic: the one holding the
partition is ready (200), the other is healthy -- its loop turns while idle -- but not
ready (503, no partitions). The stall path (503 when the loop stops turning) is covered
with a controlled heartbeat in tests/unit/test_health.py.
"""

from __future__ import annotations

import contextlib
import json
import random
import urllib.error
import urllib.request

from daemon_kit import event, wait_for

N_EVENTS = 300


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def lifecycle(daemon) -> list[dict]:
    lines = [json.loads(line) for line in daemon.log().splitlines() if line.startswith("{")]
    return [d for d in lines if d["logger"] == "stream_cl.daemon"]


def test_live_daemons_probes_model_and_logs(kafka_kit):
    topic = kafka_kit.topic("health")
    kafka_kit.produce(topic, ((str(i), event(i, random.Random(i))) for i in range(N_EVENTS)))
    group = {"group_id": f"it-health-{kafka_kit.tag}"}
    configs = [kafka_kit.config(name, [topic], kafka=group) for name in ("health-a", "health-b")]
    # Each daemon in a group learns its own model from its partitions.  Start the first
    # alone and let it learn the whole topic, so the model it reports is known; the second
    # then joins, and the group's rebalance may leave the partition where it is or move it.
    daemons = [kafka_kit.start(configs[0])]
    try:
        first_url = daemons[0].http_url()

        def first_learned_all():
            code, model = get_json(first_url + "/model")
            return model if code == 200 and model.get("events", {}).get("learned", 0) == N_EVENTS else None

        wait_for(first_learned_all, 90, "the first daemon learned the whole topic")
        daemons.append(kafka_kit.start(configs[1]))
        urls = [d.http_url() for d in daemons]

        def settled():
            health = [get_json(u + "/healthz") for u in urls]
            ready = [get_json(u + "/readyz") for u in urls]
            learned = sum(get_json(u + "/model")[1].get("events", {}).get("learned", 0) for u in urls)
            if all(code == 200 for code, _ in health) and sorted(c for c, _ in ready) == [200, 503] \
                    and learned == N_EVENTS:
                return health, ready
            return None

        health, ready = wait_for(settled, 90, "one daemon ready with all events learned, the other idle")
        for code, body in health:
            assert code == 200 and body["status"] == "ok" and body["state"] == "running"
            assert body["last_loop_s"] < body["stall_timeout_s"] == 120.0
        i_ready = [c for c, _ in ready].index(200)
        assert ready[i_ready][1] == {"status": "ready", "state": "running", "partitions": 1}
        assert ready[1 - i_ready][1] == {"status": "not_ready", "state": "running", "partitions": 0,
                                         "detail": "no partitions assigned"}

        # Nothing is learned twice in the group: the second daemon learned nothing new.
        code, model = get_json(urls[0] + "/model")
        assert model["events"]["learned"] == N_EVENTS
        assert code == 200 and model["kind"] == "AnalyticClassifier" and model["state"] == "running"
        assert sorted(model["classes"]) == ["a", "b", "c"] and model["features"] == 4
        assert model["feature_names"] == ["f0", "f1", "f2", "f3"]
        assert model["heads"] == [{"index": 0, "forgetting": 1.0}]
        assert set(model["checkpoint"]) == {"seq", "path", "time", "unix", "age_s", "restored_from"}
        assert model["version"] == model["checkpoint"]["seq"]

        for d in daemons:
            assert d.terminate(timeout=30) == 0, d.log()[-3000:]
        for d in daemons:
            events = [line["event"] for line in lifecycle(d)]
            assert events[0] == "restore" and events[1] == "start" and events[-1] == "shutdown", events
            assert lifecycle(d)[1]["device"] == "cpu"  # the device the model runs on, "auto" resolved
            assert "assignment" in events and "stop_requested" in events
            assert len(events) < 30, f"more than lifecycle events logged: {events}"  # none per data event
        assert any(line["event"] == "checkpoint" for d in daemons for line in lifecycle(d))
    finally:
        for d in daemons:
            with contextlib.suppress(Exception):
                d.close()
