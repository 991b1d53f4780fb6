#!/bin/bash
# benchvm's dead-man switch, run every minute by benchvm-deadman.timer on the benchmark VM.
# The agent arms it for a run (RUN_DIR/armed holds the allowed silence in seconds) and keeps
# RUN_DIR/heartbeat fresh while its controller is connected. When the heartbeat goes silent
# for longer than that, the controller is gone: kill the agent's process group and have
# Azure deallocate this VM (a guest power-off alone leaves it "stopped" and still billed),
# using the VM's managed identity. Endpoints can be overridden for tests.
set -euo pipefail

RUN_DIR=${BENCHVM_RUN_DIR:-/run/benchvm}
IMDS=${BENCHVM_IMDS:-http://169.254.169.254}
ARM=${BENCHVM_ARM:-https://management.azure.com}
log() { logger -t benchvm-deadman -- "$*" 2>/dev/null || true; echo "benchvm-deadman: $*" >&2; }

[ -f "$RUN_DIR/armed" ] || exit 0
silence=$(cat "$RUN_DIR/armed")
case "$silence" in '' | *[!0-9]*) log "ignoring malformed $RUN_DIR/armed"; exit 0 ;; esac
now=$(date +%s)
beat=$(stat -c %Y "$RUN_DIR/heartbeat" 2>/dev/null || echo 0)
if [ $((now - beat)) -le "$silence" ]; then
  exit 0
fi

log "heartbeat silent for $((now - beat)) s (allowed $silence s): stopping the run, deallocating"
# Disarm first, so that a failure below is not retried every minute forever.
rm -f "$RUN_DIR/armed"
if pid=$(cat "$RUN_DIR/agent.pid" 2>/dev/null) && [ -n "$pid" ]; then
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
fi

token=$(curl -sf --max-time 10 -H 'Metadata: true' \
  "$IMDS/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F" |
  jq -r .access_token)
compute=$(curl -sf --max-time 10 -H 'Metadata: true' "$IMDS/metadata/instance/compute?api-version=2021-02-01")
sub=$(jq -r .subscriptionId <<<"$compute")
rg=$(jq -r .resourceGroupName <<<"$compute")
name=$(jq -r .name <<<"$compute")
curl -sf --max-time 30 -X POST -H "Authorization: Bearer $token" -H 'Content-Length: 0' \
  "$ARM/subscriptions/$sub/resourceGroups/$rg/providers/Microsoft.Compute/virtualMachines/$name/deallocate?api-version=2024-07-01" \
  >/dev/null
log "deallocation of $name requested"
