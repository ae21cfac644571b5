#!/usr/bin/env bash
# A real single-node Apache Kafka 4.x broker (KRaft, combined broker+controller)
# for development and CI integration tests. No Docker and no tarball: the jars
# come from Maven Central via deploy/kafka/pom.xml, cached in .cache/kafka-libs.
#
#   deploy/kafka/dev-broker.sh start      # fresh, EMPTY broker; prints the bootstrap address
#   deploy/kafka/dev-broker.sh status     # exit 0 iff running and answering metadata requests
#   deploy/kafka/dev-broker.sh stop       # SIGTERM, then SIGKILL; idempotent
#   deploy/kafka/dev-broker.sh restart    # stop, then start again on the same data (topics, offsets kept)
#   deploy/kafka/dev-broker.sh bootstrap  # prints 127.0.0.1:<port>
#   deploy/kafka/dev-broker.sh sasl-bootstrap  # prints 127.0.0.1:<sasl port>
#   deploy/kafka/dev-broker.sh ssl-bootstrap   # prints 127.0.0.1:<ssl port>
#   deploy/kafka/dev-broker.sh ssl-cafile      # prints the PEM file that verifies the SSL listener
#   deploy/kafka/dev-broker.sh env             # export lines for every listener and file (eval it)
#
# Besides PLAINTEXT, the broker listens for each security setting a client can use, so
# those are tested against a real broker (dev credentials only, loopback):
#   SASL_PLAINTEXT  test user "alice" / "alice-secret": PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
#   SSL             a self-signed certificate for 127.0.0.1 (made once with keytool)
#   SASL_SSL        both of the above
#   SSL, mutual     as SSL, and the client must present the test client certificate
#                   (PEM files; the key is encrypted with "client-key-secret"; needs openssl)
#
# Env: STREAM_CL_KAFKA_PORT (39092), STREAM_CL_KAFKA_CONTROLLER_PORT (39093),
#      STREAM_CL_KAFKA_SASL_PORT (39094), STREAM_CL_KAFKA_SSL_PORT (39095),
#      STREAM_CL_KAFKA_SASL_SSL_PORT (39096), STREAM_CL_KAFKA_MTLS_PORT (39097),
#      STREAM_CL_KAFKA_DIR (data, config, pid, log; default .cache/kafka-run),
#      STREAM_CL_KAFKA_READY_TIMEOUT (seconds, 90), STREAM_CL_PYTHON (a python
#      with kafka-python for the readiness probe), JAVA_HOME.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
LIBS="$REPO/.cache/kafka-libs"
PORT="${STREAM_CL_KAFKA_PORT:-39092}"
CTL_PORT="${STREAM_CL_KAFKA_CONTROLLER_PORT:-39093}"
SASL_PORT="${STREAM_CL_KAFKA_SASL_PORT:-39094}"
SSL_PORT="${STREAM_CL_KAFKA_SSL_PORT:-39095}"
SASL_SSL_PORT="${STREAM_CL_KAFKA_SASL_SSL_PORT:-39096}"
MTLS_PORT="${STREAM_CL_KAFKA_MTLS_PORT:-39097}"
SASL_USER=alice
SASL_PASSWORD=alice-secret
RUN_DIR="${STREAM_CL_KAFKA_DIR:-$REPO/.cache/kafka-run}"
[[ "$RUN_DIR" == /* ]] || RUN_DIR="$PWD/$RUN_DIR"   # the JVM gets absolute paths
READY_TIMEOUT="${STREAM_CL_KAFKA_READY_TIMEOUT:-90}"
BOOTSTRAP="127.0.0.1:$PORT"
PID_FILE="$RUN_DIR/broker.pid"
LOG="$RUN_DIR/broker.log"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
# Every JVM we start (broker, StorageTool, ClusterTool) uses our log4j2 config;
# without it log4j2 complains on stderr and logs at ERROR only.
JAVA_COMMON=(-Djava.awt.headless=true "-Dlog4j2.configurationFile=$HERE/log4j2.properties" -cp "$LIBS/*")
# Short-lived tool JVMs: C1 only starts faster and they never get hot. (Not for
# the broker: benchmarks may measure its throughput.)
TOOL_OPTS=(-XX:TieredStopAtLevel=1)

log() { echo "dev-broker: $*" >&2; }
die() { log "$*"; exit 1; }
ALL_PORTS=("$PORT" "$CTL_PORT" "$SASL_PORT" "$SSL_PORT" "$SASL_SSL_PORT" "$MTLS_PORT")
[[ "${ALL_PORTS[*]}" =~ ^[0-9\ ]+$ ]] || die "ports must be numeric: ${ALL_PORTS[*]}"
TLS_DIR="$RUN_DIR/tls"
TLS_PASSWORD=dev-broker-keystore
CLIENT_KEY_PASSWORD=client-key-secret

# Jars: mvn runs only when the cache is missing or pom.xml changed (the stamp
# is a checksum of pom.xml), so after the first start everything is offline.
ensure_libs() {
  local stamp=".stamp-$(cksum <"$HERE/pom.xml" | cut -d' ' -f1)"
  [[ -f "$LIBS/$stamp" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found and $LIBS is empty"
  log "fetching Kafka jars from Maven Central into $LIBS (one-time)"
  # Download next to the cache and rename: an interrupted mvn never leaves a
  # half-filled cache that would pass the stamp check.
  rm -rf "$LIBS.tmp"
  mvn -B -q -f "$HERE/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" >&2
  touch "$LIBS.tmp/$stamp"
  rm -rf "$LIBS" && mv "$LIBS.tmp" "$LIBS"
}

# Pid of OUR broker, if it runs. Checks the command line so that a recycled pid
# (or a zombie left by a non-reaping init in a container) never counts as alive.
is_broker() { ps -ww -o args= -p "$1" 2>/dev/null | grep -q 'kafka\.Kafka'; }
broker_pid() {
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null)" && [[ -n "$pid" ]] && is_broker "$pid" && echo "$pid"
}

# READY = a metadata request is answered, not merely an open port (the socket
# accepts connections well before the broker has joined its own KRaft quorum).
PROBE_PY='
import logging, sys
logging.disable(logging.CRITICAL)  # "connection refused" noise while booting
from kafka import KafkaAdminClient
want = dict(bootstrap_servers=sys.argv[1], request_timeout_ms=3000,
            bootstrap_timeout_ms=1000, api_version_auto_timeout_ms=1000)
# only pass options this kafka-python version knows (2.x and 3.x differ)
admin = KafkaAdminClient(**{k: v for k, v in want.items() if k in KafkaAdminClient.DEFAULT_CONFIG})
try:
    sys.exit(0 if admin.describe_cluster().get("brokers") else 1)
finally:
    admin.close()
'
find_python() {
  local py
  for py in "${STREAM_CL_PYTHON:-}" "$REPO/.venv/bin/python" python3; do
    [[ -n "$py" ]] && command -v "$py" >/dev/null && "$py" -c 'import kafka' 2>/dev/null \
      && { echo "$py"; return 0; }
  done
  return 1
}
probe() {  # $1: python with kafka-python, or empty for the (slower) Java fallback
  if [[ -n "$1" ]]; then
    timeout 15 "$1" -c "$PROBE_PY" "$BOOTSTRAP" >/dev/null 2>&1
  else  # ClusterTool cluster-id does a DescribeCluster round trip
    printf 'request.timeout.ms=3000\ndefault.api.timeout.ms=5000\n' >"$RUN_DIR/probe-admin.properties"
    timeout 20 "$JAVA" "${TOOL_OPTS[@]}" "${JAVA_COMMON[@]}" org.apache.kafka.tools.ClusterTool cluster-id \
      --bootstrap-server "$BOOTSTRAP" --command-config "$RUN_DIR/probe-admin.properties" >/dev/null 2>&1
  fi
}

# A self-signed certificate for 127.0.0.1 (and localhost), kept across restarts; the
# same certificate, as PEM, is the CA file clients verify the SSL listener with.
# The client's certificate (self-signed too) is what the mutual-TLS listener trusts; its
# key goes to PEM through openssl, encrypted, so the tests also cover ssl_password.
ensure_tls() {
  [[ -s "$TLS_DIR/client-key.pem" ]] && return 0  # written last: the set is complete
  local keytool="${JAVA_HOME:+$JAVA_HOME/bin/}keytool"
  command -v "$keytool" >/dev/null || die "keytool not found (it comes with the JDK)"
  command -v openssl >/dev/null || die "openssl not found (apt-get install openssl): it writes the test client key"
  rm -rf "$TLS_DIR" && mkdir -p "$TLS_DIR"
  local store=(-storetype PKCS12 -storepass "$TLS_PASSWORD")
  "$keytool" -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 3650 -dname "CN=127.0.0.1" \
    -ext "SAN=IP:127.0.0.1,DNS:localhost" -keystore "$TLS_DIR/broker.p12" "${store[@]}" \
    -keypass "$TLS_PASSWORD" >>"$LOG" 2>&1 || die "keytool -genkeypair (broker) failed"
  "$keytool" -exportcert -alias broker -rfc -keystore "$TLS_DIR/broker.p12" -storepass "$TLS_PASSWORD" \
    -file "$TLS_DIR/ca.pem" >>"$LOG" 2>&1 || die "keytool -exportcert (broker) failed"
  "$keytool" -genkeypair -alias client -keyalg RSA -keysize 2048 -validity 3650 -dname "CN=stream-cl-test-client" \
    -keystore "$TLS_DIR/client.p12" "${store[@]}" -keypass "$TLS_PASSWORD" >>"$LOG" 2>&1 \
    || die "keytool -genkeypair (client) failed"
  "$keytool" -exportcert -alias client -rfc -keystore "$TLS_DIR/client.p12" -storepass "$TLS_PASSWORD" \
    -file "$TLS_DIR/client-cert.pem" >>"$LOG" 2>&1 || die "keytool -exportcert (client) failed"
  "$keytool" -importcert -noprompt -alias client -file "$TLS_DIR/client-cert.pem" \
    -keystore "$TLS_DIR/client-trust.p12" "${store[@]}" >>"$LOG" 2>&1 || die "keytool -importcert failed"
  openssl pkcs12 -in "$TLS_DIR/client.p12" -passin "pass:$TLS_PASSWORD" -nocerts \
    -passout "pass:$CLIENT_KEY_PASSWORD" -out "$TLS_DIR/client-key.pem.tmp" >>"$LOG" 2>&1 \
    || die "openssl pkcs12 (client key) failed"
  mv "$TLS_DIR/client-key.pem.tmp" "$TLS_DIR/client-key.pem"
}

write_config() {
  cat >"$RUN_DIR/server.properties" <<EOF
# Generated by deploy/kafka/dev-broker.sh; rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CTL_PORT
controller.listener.names=CONTROLLER
# 127.0.0.1 only: a dev/CI broker must not be reachable from the network.
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CTL_PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$SSL_PORT,SASL_SSL://127.0.0.1:$SASL_SSL_PORT,MTLS://127.0.0.1:$MTLS_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CTL_PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$SSL_PORT,SASL_SSL://127.0.0.1:$SASL_SSL_PORT,MTLS://127.0.0.1:$MTLS_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,MTLS:SSL
# TLS for client tests: a self-signed certificate for 127.0.0.1 (see ensure_tls).
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/broker.p12
ssl.keystore.password=$TLS_PASSWORD
ssl.key.password=$TLS_PASSWORD
ssl.client.auth=none
# Mutual TLS on its own listener: clients must present the test client certificate.
listener.name.mtls.ssl.client.auth=required
listener.name.mtls.ssl.truststore.type=PKCS12
listener.name.mtls.ssl.truststore.location=$TLS_DIR/client-trust.p12
listener.name.mtls.ssl.truststore.password=$TLS_PASSWORD
# SASL for client tests: PLAIN users live in the JAAS line, SCRAM credentials in the
# cluster metadata (written by "StorageTool format --add-scram" below). No authorizer:
# an authenticated client may do anything, as on the PLAINTEXT listener.
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$RUN_DIR/data
# One broker: internal topics cannot have more than one replica. One partition
# each (default 50) makes the first consumer group / transaction much faster.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
# Tests: no 3 s wait before the first rebalance; topics appear on first use.
group.initial.rebalance.delay.ms=0
num.partitions=1
auto.create.topics.enable=true
# Tests send a ~10-12 MB record to exercise the dead-letter path: the broker
# must accept it (16 MiB). A request carries the batch plus headers, so the
# socket limit stays at its 100 MiB default, above message.max.bytes.
message.max.bytes=16777216
replica.fetch.max.bytes=16777216
socket.request.max.bytes=104857600
EOF
}

# AppCDS: on 2 CI cores most of the broker's start is parsing and verifying
# classes from ~45 jars. The first broker dumps the classes it loaded into an
# archive when it stops; later JVMs map it (broker start ~7.8 s -> ~4 s).
# An archive only fits the JDK that wrote it, hence the JDK in its name.
cds_file() { echo "$LIBS/kafka-$("$JAVA" -version 2>&1 | cksum | cut -d' ' -f1).jsa"; }
promote_cds() {
  # A dump cut short (SIGKILL, disk full) makes every later JVM die of SIGBUS,
  # so keep only an archive that a JVM can map with -Xshare:on (fatal if not).
  local cds; cds="$(cds_file)"
  [[ -f "$cds.tmp" ]] || return 0
  if "$JAVA" -Xshare:on "-XX:SharedArchiveFile=$cds.tmp" "${TOOL_OPTS[@]}" "${JAVA_COMMON[@]}" \
    kafka.tools.StorageTool random-uuid >/dev/null 2>&1; then
    mv "$cds.tmp" "$cds"
  else
    rm -f "$cds.tmp"
  fi
}

stop_broker() {
  local pid i
  if pid="$(broker_pid)"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do  # 30 s; a clean stop takes 1-3 s (+2 s for a CDS dump)
      is_broker "$pid" || break
      sleep 0.5
    done
    if is_broker "$pid"; then
      log "broker $pid ignored SIGTERM for 30 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    promote_cds
  fi
  rm -f "$PID_FILE"
}

fail_start() {
  log "$1; last 50 lines of $LOG:"
  tail -n 50 "$LOG" >&2 || true
  stop_broker
  exit 1
}

# $1 = fresh (start: a new, empty broker) or keep (restart: the same broker on its data).
start_broker() {
  local mode="${1:-fresh}"
  command -v "$JAVA" >/dev/null || die "java not found (Kafka 4.x needs Java 17+)"
  stop_broker  # start: always a fresh broker, tests assume an empty one
  local p
  for p in "${ALL_PORTS[@]}"; do  # fail clearly instead of a BindException in the log
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      die "port $p is already in use (set the STREAM_CL_KAFKA_*PORT variables listed at the top of this script)"
    fi
  done
  ensure_libs
  mkdir -p "$RUN_DIR"
  if [[ "$mode" == fresh ]]; then
    rm -rf "$RUN_DIR/data"
    : >"$LOG"
  else
    [[ -d "$RUN_DIR/data" ]] || die "no broker data in $RUN_DIR to restart on; use start"
    log "restarting on the data in $RUN_DIR/data"
  fi
  ensure_tls
  write_config

  local cds broker_cds=()
  cds="$(cds_file)"
  if [[ -f "$cds" ]]; then
    JAVA_COMMON+=("-XX:SharedArchiveFile=$cds")
  else
    broker_cds=("-XX:ArchiveClassesAtExit=$cds.tmp" -Xlog:cds=off,cds+dynamic=off)
  fi

  # KRaft refuses to start on an unformatted log dir. --standalone makes this
  # node the single voter of a dynamic quorum (controller.quorum.bootstrap.servers).
  # The cluster id survives restarts (only data/ is wiped): saves a JVM per start.
  # restart: the data is formatted already and holds the cluster's metadata.
  if [[ "$mode" == fresh ]]; then
    if [[ ! -s "$RUN_DIR/cluster.id" ]]; then
      "$JAVA" "${TOOL_OPTS[@]}" "${JAVA_COMMON[@]}" kafka.tools.StorageTool random-uuid \
        >"$RUN_DIR/cluster.id" 2>>"$LOG" || fail_start "kafka-storage random-uuid failed"
    fi
    "$JAVA" "${TOOL_OPTS[@]}" "${JAVA_COMMON[@]}" kafka.tools.StorageTool format --standalone \
      -t "$(cat "$RUN_DIR/cluster.id")" -c "$RUN_DIR/server.properties" \
      --add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]" \
      --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]" >>"$LOG" 2>&1 \
      || fail_start "kafka-storage format failed"
  fi

  # nohup + all three fds redirected: the broker survives the calling shell and
  # never holds a caller's pipe open (e.g. BS=$(dev-broker.sh start) would hang).
  local launched binds=0
  launch() {
    launched="$(wc -c <"$LOG")"
    nohup "$JAVA" -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:+ExitOnOutOfMemoryError "-XX:ErrorFile=$RUN_DIR/hs_err_pid%p.log" \
      "${broker_cds[@]}" "${JAVA_COMMON[@]}" \
      kafka.Kafka "$RUN_DIR/server.properties" >>"$LOG" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
  }
  launch

  local py deadline=$((SECONDS + READY_TIMEOUT))
  py="$(find_python)" || log "no python with kafka-python; using the Java readiness probe"
  while ((SECONDS < deadline)); do
    if ! broker_pid >/dev/null; then
      # The ports lie in Linux's ephemeral range (32768-60999): a client's outgoing connection can take one
      # as its local port between the check above and the broker's bind (review r119 F3). Launch again.
      # (grep reads a process substitution: under pipefail, tail killed by grep -q's early exit read as no match)
      if ((binds < 3)) && grep -q "Address already in use" < <(tail -c "+$((launched + 1))" "$LOG"); then
        binds=$((binds + 1))
        log "a listener port was taken between the check and the bind; launching again ($binds of 3)"
        sleep 1
        launch
        sleep 0.5  # before the liveness check: a process not yet exec'd as java reads as exited (review r122)
        continue
      fi
      fail_start "broker process exited during startup"
    fi
    if probe "$py"; then
      log "ready on $BOOTSTRAP (pid $(cat "$PID_FILE"), log $LOG)"
      echo "$BOOTSTRAP"
      return 0
    fi
    sleep 0.5
  done
  fail_start "broker did not answer a metadata request within ${READY_TIMEOUT}s"
}

case "${1:-}" in
  start) start_broker fresh ;;
  restart) start_broker keep ;;  # stop, then the same broker on its data (an outage for tests)
  stop) stop_broker ;;
  status)
    broker_pid >/dev/null || { log "not running"; exit 1; }
    probe "$(find_python || true)" || { log "running but not answering on $BOOTSTRAP"; exit 1; }
    echo "$BOOTSTRAP" ;;
  bootstrap) echo "$BOOTSTRAP" ;;
  sasl-bootstrap) echo "127.0.0.1:$SASL_PORT" ;;
  ssl-bootstrap) echo "127.0.0.1:$SSL_PORT" ;;
  ssl-cafile) echo "$TLS_DIR/ca.pem" ;;
  env)  # everything the security tests need, as shell exports
    printf 'export %s=%q\n' \
      STREAM_CL_KAFKA_BOOTSTRAP "$BOOTSTRAP" \
      STREAM_CL_KAFKA_SASL_BOOTSTRAP "127.0.0.1:$SASL_PORT" \
      STREAM_CL_KAFKA_SSL_BOOTSTRAP "127.0.0.1:$SSL_PORT" \
      STREAM_CL_KAFKA_SASL_SSL_BOOTSTRAP "127.0.0.1:$SASL_SSL_PORT" \
      STREAM_CL_KAFKA_MTLS_BOOTSTRAP "127.0.0.1:$MTLS_PORT" \
      STREAM_CL_KAFKA_SSL_CAFILE "$TLS_DIR/ca.pem" \
      STREAM_CL_KAFKA_SSL_CERTFILE "$TLS_DIR/client-cert.pem" \
      STREAM_CL_KAFKA_SSL_KEYFILE "$TLS_DIR/client-key.pem" \
      STREAM_CL_KAFKA_SSL_KEY_PASSWORD "$CLIENT_KEY_PASSWORD" ;;
  *) echo "usage: $0 start|restart|stop|status|bootstrap|sasl-bootstrap|ssl-bootstrap|ssl-cafile|env" >&2; exit 2 ;;
esac
