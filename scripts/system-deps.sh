#!/usr/bin/env bash
# Debian packages the tests need: promtool/Prometheus, Alertmanager, docker-compose
# (only to validate the compose file; no Docker engine is needed).
set -euo pipefail
need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null \
    || need+=(prometheus-alertmanager)
command -v docker-compose >/dev/null || need+=(docker-compose)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: please install these Debian packages: ${need[*]}" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
    exit 1
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: docker-compose would otherwise pull the Docker engine
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
