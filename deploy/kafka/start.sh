#!/usr/bin/env bash
# The compose `kafka` service's entrypoint (image apache/kafka:3.9.1): writes the broker's
# server.properties, formats the storage once with the first SCRAM users, then runs the
# broker. The image's own launcher is bypassed on purpose: it turns KAFKA_* variables into
# properties (so a secret must never be named KAFKA_*), has no way to add SCRAM users
# before the first start (KRaft needs them then: nobody could log in to create them), and
# insists on JKS keystore files for TLS.
#
# The same security as the local stack (deploy/local/server.properties.template):
#   CLIENT      :9092  SASL_SSL (SCRAM-SHA-512 over TLS) - the only listener other containers use
#   INTERNAL    :9094  SASL_PLAINTEXT on 127.0.0.1 - the broker to itself, and the healthcheck
#   CONTROLLER  :9093  SASL_PLAINTEXT on 127.0.0.1 - nobody outside the container reaches it
# StandardAuthorizer, allow.everyone.if.no.acl.found=false, super users broker and admin.
# The other principals (worker, auditor, departments) and every ACL are created by the
# one-shot `migrate` service as the admin (`citystream topics`, `citystream access users`).
#
# TLS: /etc/kafka/tls/server.pem holds the broker's private key (unencrypted PKCS#8 PEM,
# "BEGIN PRIVATE KEY") followed by its certificate chain, for the host name `kafka`;
# README > Security > "TLS for compose" shows how to make them.
set -euo pipefail

: "${CITYSTREAM_KAFKA_BROKER_PASSWORD:?set CITYSTREAM_KAFKA_BROKER_PASSWORD in .env}"
: "${CITYSTREAM_KAFKA_ADMIN_PASSWORD:?set CITYSTREAM_KAFKA_ADMIN_PASSWORD in .env}"
TLS_PEM=/etc/kafka/tls/server.pem
if [[ ! -r "$TLS_PEM" ]]; then
  echo "kafka: $TLS_PEM is missing or unreadable: put the broker's key and certificate chain" \
       "in deploy/kafka/tls/broker/server.pem (README > Security > TLS for compose)" >&2
  exit 1
fi

DATA=/var/lib/kafka/data
CONF_DIR=/tmp/citystream-kafka
umask 077
mkdir -p "$CONF_DIR"
CONF="$CONF_DIR/server.properties"
jaas() {
  echo "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$1\" password=\"$2\";"
}
cat > "$CONF" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
listeners=CLIENT://:9092,INTERNAL://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093
advertised.listeners=CLIENT://kafka:9092,INTERNAL://127.0.0.1:9094
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
sasl.mechanism.controller.protocol=SCRAM-SHA-512
listener.name.controller.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=$(jaas broker "$CITYSTREAM_KAFKA_BROKER_PASSWORD")
listener.name.internal.scram-sha-512.sasl.jaas.config=$(jaas broker "$CITYSTREAM_KAFKA_BROKER_PASSWORD")
listener.name.controller.scram-sha-512.sasl.jaas.config=$(jaas broker "$CITYSTREAM_KAFKA_BROKER_PASSWORD")
listener.name.client.ssl.keystore.type=PEM
listener.name.client.ssl.keystore.location=$TLS_PEM
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:broker;User:admin
log.dirs=$DATA
num.partitions=6
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# A mistyped topic name must fail, not create a topic with the default 7-day retention.
auto.create.topics.enable=false
# group.initial.rebalance.delay.ms stays at Kafka's 3 s (the local stack's is 0): scaled
# workers starting together then join one rebalance instead of several.
PROPERTIES

# The healthcheck logs in as the admin on the loopback listener.
cat > "$CONF_DIR/healthcheck.properties" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=$(jaas admin "$CITYSTREAM_KAFKA_ADMIN_PASSWORD")
PROPERTIES

if [[ ! -e "$DATA/meta.properties" ]]; then
  # Once, on an empty volume: the broker's and the admin's credentials must exist before
  # the first start. Later password changes go through `citystream access` (README).
  /opt/kafka/bin/kafka-storage.sh format -c "$CONF" \
    -t "$(/opt/kafka/bin/kafka-storage.sh random-uuid)" \
    --add-scram "SCRAM-SHA-512=[name=broker,password=$CITYSTREAM_KAFKA_BROKER_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$CITYSTREAM_KAFKA_ADMIN_PASSWORD]"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$CONF"
