#!/bin/sh
# InfluxDB 2.x for Segel: the bucket with its retention, a write-only token for the gateway, a
# read-only token for Grafana, and the DBRP mapping that lets Grafana's InfluxQL queries (and
# the gateway's v1-style database name) reach the bucket. Prints the two tokens once.
#
# Needs the `influx` 2.x CLI configured for the server with an operator/all-access token
# (`influx config create ...`, or INFLUX_HOST and INFLUX_TOKEN in the environment).
#
#   SEGEL_INFLUX_ORG=kpu-kutim sh deploy/influxdb/setup-2x.sh
#
# Environment (defaults in brackets): SEGEL_INFLUX_ORG (required), SEGEL_INFLUX_BUCKET [segel],
# SEGEL_INFLUX_RETENTION [730d], SEGEL_INFLUX_DB [segel] (the InfluxQL database name), SEGEL_INFLUX_RP [segel].
set -eu

ORG=${SEGEL_INFLUX_ORG:?set SEGEL_INFLUX_ORG}
BUCKET=${SEGEL_INFLUX_BUCKET:-segel}
RETENTION=${SEGEL_INFLUX_RETENTION:-730d}
DB=${SEGEL_INFLUX_DB:-segel}
RP=${SEGEL_INFLUX_RP:-segel}

bucket_id() { influx bucket list --org "$ORG" --name "$BUCKET" --hide-headers 2>/dev/null | awk '{ print $1 }'; }

ID=$(bucket_id || true)
if [ -z "$ID" ]; then
    influx bucket create --org "$ORG" --name "$BUCKET" --retention "$RETENTION" \
        --description "Segel: tracker telemetry, custody events and alerts" >/dev/null
    ID=$(bucket_id)
else
    influx bucket update --id "$ID" --retention "$RETENTION" >/dev/null
fi

if ! influx v1 dbrp list --org "$ORG" --bucket-id "$ID" --hide-headers 2>/dev/null | grep -q .; then
    influx v1 dbrp create --org "$ORG" --db "$DB" --rp "$RP" --bucket-id "$ID" --default >/dev/null
fi

token() {  # token DESCRIPTION --write-bucket|--read-bucket
    influx auth create --org "$ORG" "$2" "$ID" --description "$1" --json \
        | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p' | head -n 1
}
GW_TOKEN=$(token "segel gateway: write $BUCKET only" --write-bucket)
GF_TOKEN=$(token "segel grafana: read $BUCKET only" --read-bucket)

cat <<OUT
bucket $BUCKET ($ID): retention $RETENTION; InfluxQL database "$DB" retention policy "$RP" (DBRP, default)
gateway (segel.toml [influx] kind = "v2", bucket = "$BUCKET", org = "$ORG"):
  SEGEL_INFLUX_TOKEN=$GW_TOKEN
grafana (dashboards/provisioning/datasources-influxdb2/):
  SEGEL_GRAFANA_INFLUX_TOKEN=$GF_TOKEN
Keep both secret; revoke with: influx auth delete --id <id> (influx auth list).
OUT
