#!/bin/bash
# Entry point of the compose deployment's Kafka (apache/kafka image): SASL/SCRAM-SHA-512 on the client listener.
# KAFKA_USER and KAFKA_PASSWORD come from the environment (docker-compose.yml requires DALSTON_KAFKA_PASSWORD).
set -euo pipefail
: "${KAFKA_USER:?KAFKA_USER must be set}"
: "${KAFKA_PASSWORD:?KAFKA_PASSWORD must be set}"
# The password goes into a JAAS line and a SCRAM credential spec: keep it to characters neither needs quoted.
if [[ ! "$KAFKA_PASSWORD" =~ ^[A-Za-z0-9_.~-]{12,}$ || ! "$KAFKA_USER" =~ ^[A-Za-z0-9_.-]+$ ]]; then
  echo "KAFKA_PASSWORD must be at least 12 of A-Z a-z 0-9 _ . ~ - (and KAFKA_USER of A-Z a-z 0-9 _ . -)" >&2
  exit 1
fi
props=/tmp/server.properties
template=$(cat /opt/dalston/kafka/server.properties)
template=${template//@KAFKA_USER@/$KAFKA_USER}
template=${template//@KAFKA_PASSWORD@/$KAFKA_PASSWORD}
printf '%s\n' "$template" > "$props"
# What the health check and operators' CLI tools connect with.
cat > /tmp/client.properties <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$KAFKA_USER" password="$KAFKA_PASSWORD";
PROPS
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted -t "$(/opt/kafka/bin/kafka-storage.sh random-uuid)" -c "$props" \
  --add-scram "SCRAM-SHA-512=[name=$KAFKA_USER,password=$KAFKA_PASSWORD]"
exec /opt/kafka/bin/kafka-server-start.sh "$props"
