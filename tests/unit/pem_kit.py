"""Self-signed PEM files for unit tests of the Kafka client's TLS settings (made with openssl, which
.ci/run installs), and a TLS config around them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from stream_cl.config import KafkaConfig


def make_pem(d: Path, key_password: str, pairs: tuple = ("",)) -> dict:
    """In ``d``, for each prefix of ``pairs``, a certificate ``<prefix>cert.pem`` and its key
    ``<prefix>key.pem``, and ``enc.pem``: the first key encrypted with ``key_password``. Returns
    ``{stem: path}``."""
    assert shutil.which("openssl"), "openssl is not installed: .ci/run installs it (apt-get install openssl)"

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, stdin=subprocess.DEVNULL)

    for name in pairs:
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-subj", "/CN=127.0.0.1", "-keyout", str(d / f"{name}key.pem"), "-out", str(d / f"{name}cert.pem"))
    openssl("pkey", "-in", str(d / f"{pairs[0]}key.pem"), "-aes256", "-passout", f"pass:{key_password}",
            "-out", str(d / "enc.pem"))
    return {p.stem: str(p) for p in d.iterdir()}


def tls(**kafka) -> KafkaConfig:
    """A TLS client config to nowhere (127.0.0.1:1) with the given ``[kafka]`` keys."""
    return KafkaConfig(bootstrap_servers="127.0.0.1:1", topics=["events"], security_protocol="SSL", **kafka)
