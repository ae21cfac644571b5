"""Helpers for the daemon's integration tests: topics, records, TOML configs, daemon processes.

Nothing here sleeps to synchronise: :func:`wait_for` polls a condition with a deadline,
and readers consume topics until they hold what a test waits for.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from stream_cl.config import to_toml

REPO = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class TopicReader:
    """Reads every partition of a topic from the beginning, without a group; keeps all records.

    ``read_committed`` by default, as a consumer of the daemon's transactional output reads it.
    """

    def __init__(self, bootstrap: str, topic: str, isolation_level: str = "read_committed"):
        self.topic = topic
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                      isolation_level=isolation_level,
                                      max_partition_fetch_bytes=32 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
        parts = wait_for(lambda: self.consumer.partitions_for_topic(topic), 30, f"metadata of {topic}")
        self.partitions = [TopicPartition(topic, p) for p in sorted(parts)]
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_beginning(*self.partitions)
        self.records: list = []

    def poll(self, timeout_ms: int = 100) -> int:
        for batch in self.consumer.poll(timeout_ms=timeout_ms).values():
            self.records.extend(batch)
        return len(self.records)

    def until(self, condition: Callable[[list], object], timeout: float, what: str):
        return wait_for(lambda: self.poll() is not None and condition(self.records), timeout, what, interval=0)

    def read_to_end(self, timeout: float) -> list:
        """Every record up to the end offsets as of now (transaction markers included in the positions)."""
        ends = self.consumer.end_offsets(self.partitions)
        return self.until(lambda recs: all(self.consumer.position(tp) >= ends[tp] for tp in self.partitions),
                          timeout, f"the end of {self.topic}")

    def values(self) -> list:
        return [json.loads(r.value) for r in self.records]

    def close(self) -> None:
        self.consumer.close()


class DaemonProcess:
    """``python -m connectors.daemon --config ...`` with its output in a log file."""

    def __init__(self, config_path: Path, status_file: Path, log_path: Path):
        self.config_path, self.status_file, self.log_path = config_path, status_file, log_path
        self._log = open(log_path, "ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        extra = os.environ.get("STREAM_CL_IT_DAEMON_ARGS", "").split()  # e.g. "--kafka-log-level DEBUG"
        self.proc = subprocess.Popen([sys.executable, "-m", "connectors.daemon", "--config", str(config_path), *extra],
                                     cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def status(self) -> dict:
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def http_url(self, timeout: float = 60) -> str:
        """``http://127.0.0.1:<port>`` of its /metrics, /healthz, /readyz, /model (from the status file)."""
        status = wait_for(lambda: self.status().get("http_port") or (not self.alive and {"dead": 1}), timeout,
                          "the daemon's HTTP port in its status file")
        assert self.alive, f"the daemon exited: {self.log()[-3000:]}"
        return f"http://127.0.0.1:{status}"

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"daemon still running after {timeout:.0f} s; log:\n{self.log()[-3000:]}") from None

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.kill()
        self._log.close()


class Kit:
    """Topics, producers, readers and daemons of one test; :meth:`close` removes them all."""

    def __init__(self, bootstrap: str, folder: Path):
        self.bootstrap = bootstrap
        self.folder = Path(folder)
        self.tag = uuid.uuid4().hex[:10]
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="it-daemon-admin")
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024,
                                      max_request_size=32 * 1024 * 1024)
        self.topics: list[str] = []
        self.daemons: list[DaemonProcess] = []
        self.readers: list[TopicReader] = []

    def topic(self, name: str, partitions: int = 1) -> str:
        topic = f"it-{name}-{self.tag}"
        self.admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}},
                                 timeout_ms=10_000, wait_for_metadata=True)
        self.topics.append(topic)
        return topic

    def produce(self, topic: str, records: Iterable, partition: int | None = None) -> list:
        """Send ``(key, value)`` pairs (bytes, or dicts as JSON); returns their metadata, in order."""
        futures = []
        for key, value in records:
            if not isinstance(value, (bytes, bytearray)):
                value = json.dumps(value).encode()
            if isinstance(key, str):
                key = key.encode()
            futures.append(self.producer.send(topic, key=key, value=value, partition=partition))
        self.producer.flush(timeout=60)
        return [f.get(timeout=60) for f in futures]

    def reader(self, topic: str, isolation_level: str = "read_committed") -> TopicReader:
        r = TopicReader(self.bootstrap, topic, isolation_level)
        self.readers.append(r)
        return r

    def config(self, name: str, topics: list[str], **sections) -> tuple[Path, Path]:
        """A daemon config for a fast analytic model; ``sections`` override/extend it. Returns (path, status file)."""
        status = self.folder / f"{name}-status.json"
        base = {
            "model": {"kind": "analytic", "forgetting": [1.0]},
            "kafka": {"bootstrap_servers": self.bootstrap, "group_id": f"it-{name}-{self.tag}", "topics": topics,
                      "status_file": str(status), "poll_timeout_ms": 200},
            "checkpoint": {"dir": str(self.folder / f"{name}-ckpt"), "every_events": 1000, "every_seconds": 5.0},
            "metrics": {"port": 0},  # any free loopback port: daemons of one test never collide (see http_url)
        }
        for section, keys in sections.items():
            base[section] = {**base.get(section, {}), **keys}
        path = self.folder / f"{name}.toml"
        path.write_text(to_toml(base))
        return path, status

    def start(self, config: tuple[Path, Path], name: str | None = None) -> DaemonProcess:
        path, status = config
        d = DaemonProcess(path, status, self.folder / f"{name or path.stem}.log")
        self.daemons.append(d)
        return d

    def committed(self, group: str, topic: str, timeout: float = 60.0) -> dict[int, int]:
        """The group's committed offsets of ``topic`` (none while a fresh broker elects the group's coordinator).

        The admin client's own connection may be down for a moment after a broker restart (kafka-python
        then raises NodeNotReadyError or KafkaConnectionError at once, without reconnecting): those
        are asked again until ``timeout``; the answer itself is never retried.
        """
        from kafka.errors import CoordinatorNotAvailableError, RetriableError

        def ask() -> tuple | None:  # (in a tuple: a group of no commits answers {}, and wait_for waits on falsy)
            try:
                return (self.admin.list_group_offsets({group: None})[group],)
            except CoordinatorNotAvailableError:
                return ({},)
            except RetriableError:  # asked again: the admin client reconnects in the background meanwhile
                return None

        [offsets] = wait_for(ask, timeout, f"group {group!r}'s committed offsets (the admin client reconnecting)",
                             interval=0.1)
        return {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == topic}

    def end_offsets(self, topic: str) -> dict[int, int]:
        r = self.reader(topic)
        ends = r.consumer.end_offsets(r.partitions)
        return {tp.partition: o for tp, o in ends.items()}

    def close(self) -> None:
        for d in self.daemons:
            d.close()
        for r in self.readers:
            with contextlib.suppress(Exception):
                r.close()
        with contextlib.suppress(Exception):
            self.producer.close(timeout=10)
        with contextlib.suppress(Exception):
            if self.topics:
                self.admin.delete_topics(self.topics)
        self.admin.close()


def event(i: int, rng, n_features: int = 4, label: bool = True, classes=("a", "b", "c")) -> dict:
    """A JSON event whose class is the argmax of its first features (learnable by a linear model)."""
    x = {f"f{j}": rng.gauss(0.0, 1.0) for j in range(n_features)}
    doc = {"id": str(i), "x": x}
    if label:
        doc["y"] = true_class(x, classes)
    return doc


def true_class(x: dict, classes=("a", "b", "c")):
    scores = [x[f"f{j}"] for j in range(len(classes))]
    return classes[scores.index(max(scores))]
