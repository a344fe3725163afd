#!/usr/bin/env bash
# Start the local services the tests use when they are not running: PostgreSQL (the
# Debian cluster) on 127.0.0.1:5432 and Mosquitto on 127.0.0.1:1883. A service that
# cannot be started is reported; its tests then skip with the reason.
set -uo pipefail

if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    cluster=$(ls /etc/postgresql 2>/dev/null | head -n 1)
    if [ -n "$cluster" ]; then
        pg_ctlcluster --skip-systemctl-redirect "$cluster" main start 2>/dev/null \
            || sudo -n pg_ctlcluster --skip-systemctl-redirect "$cluster" main start 2>/dev/null
    fi
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
    pg_isready -h 127.0.0.1 -p 5432 -q \
        || echo "warning: PostgreSQL is not reachable on 127.0.0.1:5432; its tests will skip" >&2
fi

if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
    mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
    if [ -x "$mosquitto" ]; then
        "$mosquitto" -d -c /etc/mosquitto/mosquitto.conf 2>/dev/null || "$mosquitto" -d -p 1883
    fi
    for _ in $(seq 1 20); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.5; done
    (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null \
        || echo "warning: no MQTT broker on 127.0.0.1:1883; the MQTT tests will skip" >&2
fi
exit 0
