#!/bin/sh
# InfluxDB 1.x for Segel: the database, its retention policy, a write-only user for the gateway
# and a read-only user for Grafana. Safe to run again (it updates passwords and the duration).
#
# Needs the `influx` 1.x CLI and a server with [http] auth-enabled = true. If the server has no
# user yet, the admin user given here is created first (InfluxDB allows exactly that one
# unauthenticated statement).
#
#   SEGEL_INFLUX_ADMIN_PASSWORD=... SEGEL_INFLUX_GATEWAY_PASSWORD=... \
#   SEGEL_INFLUX_GRAFANA_PASSWORD=... sh deploy/influxdb/setup-1x.sh
#
# Environment (defaults in brackets): INFLUX_HOST [127.0.0.1], INFLUX_PORT [8086],
# SEGEL_INFLUX_DB [segel], SEGEL_INFLUX_RP [segel], SEGEL_INFLUX_RETENTION [730d],
# SEGEL_INFLUX_ADMIN_USER [admin], SEGEL_INFLUX_GATEWAY_USER [segel_gateway],
# SEGEL_INFLUX_GRAFANA_USER [segel_grafana]; the three *_PASSWORD variables are required.
set -eu

INFLUX_HOST=${INFLUX_HOST:-127.0.0.1}
INFLUX_PORT=${INFLUX_PORT:-8086}
DB=${SEGEL_INFLUX_DB:-segel}
RP=${SEGEL_INFLUX_RP:-segel}
RETENTION=${SEGEL_INFLUX_RETENTION:-730d}
ADMIN=${SEGEL_INFLUX_ADMIN_USER:-admin}
GW=${SEGEL_INFLUX_GATEWAY_USER:-segel_gateway}
GF=${SEGEL_INFLUX_GRAFANA_USER:-segel_grafana}
: "${SEGEL_INFLUX_ADMIN_PASSWORD:?set SEGEL_INFLUX_ADMIN_PASSWORD}"
: "${SEGEL_INFLUX_GATEWAY_PASSWORD:?set SEGEL_INFLUX_GATEWAY_PASSWORD}"
: "${SEGEL_INFLUX_GRAFANA_PASSWORD:?set SEGEL_INFLUX_GRAFANA_PASSWORD}"

# An InfluxQL string literal: backslashes and single quotes escaped.
lit() { printf "'%s'" "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g")"; }

anon() { influx -host "$INFLUX_HOST" -port "$INFLUX_PORT" -execute "$1"; }
q() {
    INFLUX_USERNAME="$ADMIN" INFLUX_PASSWORD="$SEGEL_INFLUX_ADMIN_PASSWORD" \
        influx -host "$INFLUX_HOST" -port "$INFLUX_PORT" -execute "$1"
}

if ! q "SHOW USERS" >/dev/null 2>&1; then
    echo "creating admin user $ADMIN"
    anon "CREATE USER \"$ADMIN\" WITH PASSWORD $(lit "$SEGEL_INFLUX_ADMIN_PASSWORD") WITH ALL PRIVILEGES"
fi

q "CREATE DATABASE \"$DB\""
if q "SHOW RETENTION POLICIES ON \"$DB\"" | awk 'NR > 2 { print $1 }' | grep -qx "$RP"; then
    q "ALTER RETENTION POLICY \"$RP\" ON \"$DB\" DURATION $RETENTION DEFAULT"
else
    q "CREATE RETENTION POLICY \"$RP\" ON \"$DB\" DURATION $RETENTION REPLICATION 1 DEFAULT"
fi

user() {  # user NAME PASSWORD PRIVILEGE
    if q "SHOW USERS" | awk 'NR > 2 { print $1 }' | grep -qx "$1"; then
        q "SET PASSWORD FOR \"$1\" = $(lit "$2")"
    else
        q "CREATE USER \"$1\" WITH PASSWORD $(lit "$2")"
    fi
    q "REVOKE ALL PRIVILEGES ON \"$DB\" FROM \"$1\""
    q "GRANT $3 ON \"$DB\" TO \"$1\""
}
user "$GW" "$SEGEL_INFLUX_GATEWAY_PASSWORD" WRITE
user "$GF" "$SEGEL_INFLUX_GRAFANA_PASSWORD" READ

echo "database $DB: retention policy $RP ($RETENTION, default); $GW may write only, $GF may read only"
