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

# RUN_DIR and agent.pid belong to the bench user, this script runs as root: the pid is
# untrusted input. Only a process that existed when the run was armed and belongs to the
# file's owner is signalled, and with that owner's rights, never root's.
stop_agent() {
  local pid owner started armed_at
  pid=$(cat "$RUN_DIR/agent.pid" 2>/dev/null) || return 0
  case "$pid" in '' | *[!0-9]*) log "ignoring malformed agent.pid"; return 0 ;; esac
  if [ "$pid" -le 1 ]; then log "refusing to signal pid $pid"; return 0; fi
  owner=$(stat -c %u "$RUN_DIR/agent.pid")
  if [ "$(ps -o uid= -p "$pid" 2>/dev/null | tr -d ' ')" != "$owner" ]; then
    log "pid $pid is gone or not the run owner's: not signalled"
    return 0
  fi
  # A pid recycled after the run was armed names some other process.
  started=$(($(date +%s) - $(ps -o etimes= -p "$pid" | tr -d ' ')))
  armed_at=$(stat -c %Y "$RUN_DIR/armed")
  if [ "$started" -gt $((armed_at + 2)) ]; then
    log "pid $pid started after the run was armed: not signalled"
    return 0
  fi
  if [ "$(id -u)" = "$owner" ]; then
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  else
    setpriv --reuid="$owner" --regid="$(stat -c %g "$RUN_DIR/agent.pid")" --clear-groups \
      sh -c 'kill -KILL -- "-$1" 2>/dev/null || kill -KILL "$1"' sh "$pid" || true
  fi
}

[ -f "$RUN_DIR/armed" ] || exit 0
silence=$(cat "$RUN_DIR/armed")
case "$silence" in '' | *[!0-9]*) log "ignoring malformed $RUN_DIR/armed"; exit 0 ;; esac
now=$(date +%s)
beat=$(stat -c %Y "$RUN_DIR/heartbeat" 2>/dev/null || echo 0)
if [ $((now - beat)) -le "$silence" ]; then
  exit 0
fi

log "heartbeat silent for $((now - beat)) s (allowed $silence s): stopping the run, deallocating"
stop_agent
# Disarm before deallocating: a failure below is retried by curl, not every minute forever
# (the scheduled reaper workflow is the backstop).
rm -f "$RUN_DIR/armed"

token=$(curl -sf --max-time 10 -H 'Metadata: true' \
  --retry 4 --retry-delay 5 --retry-all-errors \
  "$IMDS/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F" |
  jq -r .access_token)
compute=$(curl -sf --max-time 10 --retry 4 --retry-delay 5 --retry-all-errors -H 'Metadata: true' "$IMDS/metadata/instance/compute?api-version=2021-02-01")
sub=$(jq -r .subscriptionId <<<"$compute")
rg=$(jq -r .resourceGroupName <<<"$compute")
name=$(jq -r .name <<<"$compute")
# Transient ARM failures (429, 5xx, timeouts) are retried; curl honours Retry-After.
curl -sf --max-time 30 --retry 6 --retry-delay 10 --retry-all-errors -X POST -H "Authorization: Bearer $token" -H 'Content-Length: 0' \
  "$ARM/subscriptions/$sub/resourceGroups/$rg/providers/Microsoft.Compute/virtualMachines/$name/deallocate?api-version=2024-07-01" \
  >/dev/null
log "deallocation of $name requested"
