#!/usr/bin/with-contenv bash
# shellcheck shell=bash
# Runs the Hydra worker, announces it to Home Assistant once it answers, and stops with it.
set -euo pipefail

# The add-on fixes these; the HYDRA_ADDON_* overrides let the tests run this script on loopback.
python=${HYDRA_ADDON_PYTHON:-/opt/hydra/bin/python}
data_dir=${HYDRA_ADDON_DATA:-/data}
host=${HYDRA_ADDON_HOST:-0.0.0.0}
port=${HYDRA_ADDON_PORT:-8741}
voice_port=${HYDRA_ADDON_VOICE_PORT:-10300}
supervisor=${HYDRA_ADDON_SUPERVISOR_URL:-http://supervisor}

log() {
    echo "[hydra add-on] $*" >&2
}

# The Supervisor announces the voice server (below); zeroconf from inside the add-on would
# announce it a second time.
worker_args=(-m hydra_core.worker --data-dir "$data_dir" --host "$host" --port "$port"
    --voice-port "$voice_port" --voice-zeroconf false)
# The Supervisor writes the add-on's options there; on a plain docker host the file is absent and
# HYDRA_* environment variables configure the worker instead.
if [[ -f "$data_dir/options.json" ]]; then
    worker_args+=(--options-file "$data_dir/options.json")
fi

# The worker's certificate when its options give one (tls_cert): then it speaks only HTTPS. Bad
# options are the worker's to report, below.
tls_cert=$("$python" -c '
import sys
from hydra_core.worker.config import load_config
print(load_config(sys.argv[1:]).core.tls_cert or "")
' "${worker_args[@]:2}" 2>/dev/null || true)
scheme=http
# A readiness probe on loopback that sends no token: the certificate names the host, not
# 127.0.0.1, so it is not checked here (Home Assistant checks it).
probe_args=()
if [[ -n "$tls_cert" ]]; then
    scheme=https
    probe_args=(--insecure)
fi

"$python" "${worker_args[@]}" &
worker=$!
trap 'kill -TERM "$worker" 2>/dev/null || true' TERM INT

# Posts the discovery message on stdin to the Supervisor, which offers the matching integration.
post_discovery() {
    curl --fail --silent --show-error --max-time 10 --output /dev/null \
        --header "Authorization: Bearer ${SUPERVISOR_TOKEN}" \
        --header "Content-Type: application/json" \
        --data-binary @- "$supervisor/discovery"
}

# The worker's URL and token, for the Hydra integration, and with HTTPS its certificate's
# fingerprint, which Home Assistant then pins (the Supervisor vouches for the add-on). The token
# goes from the file straight into the request body: never into logs or argv.
announce_hydra() {
    "$python" -c '
import json, pathlib, sys
from hydra_core.client import pem_certificate_fingerprint
url, token_file, cert = sys.argv[1:]
config = {"url": url, "token": pathlib.Path(token_file).read_text().strip()}
if cert:
    config["fingerprint"] = pem_certificate_fingerprint(pathlib.Path(cert).read_text())
print(json.dumps({"service": "hydra", "config": config}))
' "${scheme}://${HOSTNAME}:${port}" "$data_dir/token" "$tls_cert" | post_discovery
}

# The voice services, for Home Assistant's wyoming integration.
announce_wyoming() {
    printf '{"service": "wyoming", "config": {"uri": "tcp://%s:%s"}}' "$HOSTNAME" "$voice_port" |
        post_discovery
}

voice_enabled() {
    "$python" -c '
import sys
from hydra_core.worker.config import load_config
sys.exit(0 if load_config(sys.argv[1:]).value("voice") else 1)
' "${worker_args[@]:2}"
}

until curl --fail --silent --output /dev/null --max-time 2 "${probe_args[@]}" \
    "${scheme}://127.0.0.1:${port}/api/v1/health"; do
    if ! kill -0 "$worker" 2>/dev/null; then
        break
    fi
    sleep 0.5
done

if kill -0 "$worker" 2>/dev/null; then
    if [[ -z "${SUPERVISOR_TOKEN:-}" ]]; then
        log "Worker ready on port $port; not under the Supervisor, so no discovery is sent"
    elif announce_hydra; then
        log "Worker ready on port $port; announced to Home Assistant"
    else
        log "Worker ready on port $port, but the discovery announcement failed"
    fi
    if [[ -n "${SUPERVISOR_TOKEN:-}" ]] && voice_enabled; then
        if announce_wyoming; then
            log "Voice services on port $voice_port; announced to Home Assistant"
        else
            log "Voice services on port $voice_port, but the discovery announcement failed"
        fi
    fi
fi

# A trapped signal cuts `wait` short while the worker is still stopping, so wait until it is gone;
# bash keeps a finished child's status, which the last `wait` then returns.
while kill -0 "$worker" 2>/dev/null; do
    wait "$worker" || true
done
status=0
wait "$worker" || status=$?
exit "$status"
