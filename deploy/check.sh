#!/usr/bin/env bash
# Static checks of the deployment files. Run from anywhere in the repository:
#   deploy/check.sh
# Needs: promtool (Debian package prometheus), amtool (prometheus-alertmanager; optional),
# docker-compose (docker-compose, installed with --no-install-recommends), python3.
# Runs every check, prints each one, and exits non-zero if any failed.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 2

failed=()
passed=0

run() {
    local name="$1"
    shift
    echo "==> $name"
    echo "    \$ $*"
    local out
    if out="$("$@" 2>&1)"; then
        passed=$((passed + 1))
        printf '%s\n' "$out" | sed 's/^/    /'
        echo "    ok"
    else
        printf '%s\n' "$out" | sed 's/^/    /'
        echo "    FAILED"
        failed+=("$name")
    fi
}

skip() {
    echo "==> $1"
    echo "    skipped: $2"
}

need() {
    if ! command -v "$1" > /dev/null 2>&1; then
        echo "==> $1"
        echo "    FAILED: $1 not found ($2)"
        failed+=("$1 present")
        return 1
    fi
}

prom=deploy/prometheus
am=deploy/alertmanager/alertmanager.yml
board=deploy/grafana/dashboards/revpulse.json

if need promtool "apt-get install prometheus"; then
    run "prometheus config (and the rule files it names)" \
        promtool check config "$prom/prometheus.yml"
    run "prometheus rules" \
        promtool check rules "$prom/recording_rules.yml" "$prom/alert_rules.yml"
    run "prometheus rule unit tests" \
        promtool test rules "$prom"/tests/*.yml
fi

if command -v amtool > /dev/null 2>&1; then
    run "alertmanager config" amtool check-config "$am"
    run "alertmanager routes: MarketingAcvUnderBand goes to the band webhook" \
        amtool config routes test --config.file="$am" \
        --verify.receivers=marketing-acv-band-webhook alertname=MarketingAcvUnderBand band=under
    run "alertmanager routes: MarketingAcvModerateBand goes to the band webhook" \
        amtool config routes test --config.file="$am" \
        --verify.receivers=marketing-acv-band-webhook alertname=MarketingAcvModerateBand band=moderate
    run "alertmanager routes: operational alerts do not" \
        amtool config routes test --config.file="$am" \
        --verify.receivers=revpulse-ops alertname=RevpulseWorkerDown
else
    skip "alertmanager config" "amtool not found (apt-get install prometheus-alertmanager)"
fi

# the compose file requires the webhook secret from the environment: give it one to validate
export REVPULSE_INGEST_SECRETS="${REVPULSE_INGEST_SECRETS:-[\"check-only-not-a-secret\"]}"
if command -v docker-compose > /dev/null 2>&1; then
    run "docker-compose file" docker-compose -f docker-compose.yml config -q
elif docker compose version > /dev/null 2>&1; then
    run "docker compose file" docker compose -f docker-compose.yml config -q
else
    echo "==> docker-compose file"
    echo "    FAILED: docker-compose not found (apt-get install --no-install-recommends docker-compose)"
    failed+=("docker-compose present")
fi

if need python3 "apt-get install python3"; then
    for file in deploy/grafana/dashboards/*.json; do
        run "dashboard JSON: $file" python3 -m json.tool "$file" /dev/null
    done
    # Dashboard queries parse as PromQL and, like the rules, name only series the worker
    # exports (models/catalogue.py and the operational list) or recording rules; and every
    # catalogue metric has its recording rule.
    queries="$(mktemp -d)"
    trap 'rm -rf "$queries"' EXIT
    run "series names in the board and rules; a recording rule per catalogue metric" \
        python3 - "$board" "$queries/board_rules.yml" <<'PY'
import json, re, sys
sys.path.insert(0, ".")
from models.catalogue import CATALOGUE, QUOTIENT_KINDS

board_path, out_path = sys.argv[1], sys.argv[2]
recording = open("deploy/prometheus/recording_rules.yml").read()
alerting = open("deploy/prometheus/alert_rules.yml").read()
records = set(re.findall(r"^\s*- record:\s*(\S+)", recording, re.M))

exported = {"up", "revpulse_marketing_acv_band", "revpulse_consumer_lag_messages",
            "revpulse_sink_last_success_timestamp_seconds", "revpulse_ledger_recovered",
            "revpulse_ledger_owner", "revpulse_watermark_timestamp_seconds",
            "revpulse_metrics_clock_timestamp_seconds", "revpulse_last_event_timestamp_seconds",
            "revpulse_last_publish_success_timestamp_seconds"}
for counter in ("events_consumed", "events_rejected", "events_duplicate", "events_late",
                "sink_errors", "publish_failures", "events_conflicting", "channels_overflowed"):
    exported.add(f"revpulse_{counter}_total")
exported |= {f"revpulse_event_to_publish_latency_seconds_{s}" for s in ("bucket", "sum", "count")}
exported |= {f"revpulse_publish_duration_seconds_{s}" for s in ("bucket", "sum", "count")}
exported |= {f"revpulse_event_loop_lag_seconds_{s}" for s in ("bucket", "sum", "count")}
missing = []
for metric in CATALOGUE:
    gauge = f"revpulse_{metric.name}" + ("_ratio" if metric.kind == "ratio" else "")
    exported.add(gauge)
    if metric.kind in QUOTIENT_KINDS:
        exported |= {f"{gauge}_numerator", f"{gauge}_denominator"}
    if f"revpulse:{metric.name}" not in records:
        missing.append(f"revpulse:{metric.name}")
known = exported | records

def names(text):
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    return set(re.findall(r"\b(revpulse[_:][A-Za-z0-9_:]*|up)(?=\s*[{\[)]|\s|$)", code, re.M))

exprs = [t["expr"] for p in json.load(open(board_path))["panels"] for t in p.get("targets", [])]
unknown = {}
for where, text in (("board", "\n".join(exprs)), ("recording_rules.yml", recording),
                    ("alert_rules.yml", alerting)):
    bad = sorted(names(text) - known)
    if bad:
        unknown[where] = bad
with open(out_path, "w") as out:
    out.write("groups:\n  - name: board\n    rules:\n")
    for i, expr in enumerate(exprs):
        out.write(f"      - record: board:query_{i}\n        expr: {json.dumps(expr.replace('$window', '30d'))}\n")
seen = names("\n".join(exprs)) | names(recording) | names(alerting)
print(f"{len(exprs)} board queries, {len(records)} recording rules, {len(CATALOGUE)} catalogue metrics; {len(seen)} series names checked")
if missing:
    print("catalogue metrics without a recording rule:", ", ".join(missing))
for where, bad in unknown.items():
    print(f"unknown series in {where}:", ", ".join(bad))
sys.exit(1 if missing or unknown else 0)
PY
    if [[ -s "$queries/board_rules.yml" ]] && command -v promtool > /dev/null 2>&1; then
        run "board queries parse as PromQL" promtool check rules "$queries/board_rules.yml"
    fi
fi

echo
if ((${#failed[@]})); then
    echo "FAILED: ${#failed[@]} check(s), $passed passed:"
    printf '  - %s\n' "${failed[@]}"
    exit 1
fi
echo "all $passed checks passed"
