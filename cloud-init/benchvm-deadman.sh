#!/bin/bash
# benchvm's dead-man switch, run every minute by benchvm-deadman.timer on the benchmark VM.
# It has Azure deallocate this VM (a guest power-off alone leaves it "stopped" and still
# billed), using the VM's managed identity, when either
#  - the VM has been up longer than a hard cap kept where only root can write
#    (/etc/benchvm/max-uptime-s; this covers boot to arming, a run's end to its
#    deallocation, and a benchmark that keeps the heartbeat fresh on its own), or
#  - a run armed it (RUN_DIR/armed holds the allowed silence in seconds) and RUN_DIR/heartbeat,
#    kept fresh while the controller is connected, went silent for longer: the controller is
#    gone, so the agent's process group is killed first.
# RUN_DIR belongs to the bench user and the benchmark can write it: everything in it is
# untrusted input to this root script. Files are read only when they are regular files (a
# FIFO would block the read), bounded in size and time. The switch stays armed until a
# deallocation was requested: an IMDS or ARM outage is retried every minute, with an attempt
# count in root's own state directory. Endpoints and paths can be overridden for tests.
set -uo pipefail

RUN_DIR=${BENCHVM_RUN_DIR:-/run/benchvm}
STATE_DIR=${BENCHVM_STATE_DIR:-/run/benchvm-deadman}
IMDS=${BENCHVM_IMDS:-http://169.254.169.254}
ARM=${BENCHVM_ARM:-https://management.azure.com}
UPTIME_FILE=${BENCHVM_UPTIME_FILE:-/proc/uptime}
RETRY_DELAY=${BENCHVM_RETRY_DELAY:-5}
log() { logger -t benchvm-deadman -- "$*" 2>/dev/null || true; echo "benchvm-deadman: $*" >&2; }

# The first line of a small regular file (not a link, not a FIFO), or failure.
read_small() {
  [ -f "$1" ] && [ ! -L "$1" ] || return 1
  timeout 5 head -c 64 -- "$1" | head -n 1
}
number() { case "$1" in '' | *[!0-9]*) return 1 ;; esac; }

# Only a process that existed when the run was armed and belongs to agent.pid's owner is
# signalled, and with that owner's rights, never root's.
stop_agent() {
  local pid owner started armed_at
  if ! pid=$(read_small "$RUN_DIR/agent.pid") || ! number "$pid"; then
    log "ignoring malformed agent.pid"
    return 0
  fi
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

# Transient failures (429, 5xx, timeouts) are retried; curl honours Retry-After.
deallocate() {
  local token compute sub rg name
  token=$(curl -sf --max-time 10 --retry 2 --retry-delay "$RETRY_DELAY" --retry-all-errors -H 'Metadata: true' \
    "$IMDS/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F" |
    jq -er .access_token) || return 1
  compute=$(curl -sf --max-time 10 --retry 2 --retry-delay "$RETRY_DELAY" --retry-all-errors -H 'Metadata: true' \
    "$IMDS/metadata/instance/compute?api-version=2021-02-01") || return 1
  sub=$(jq -er .subscriptionId <<<"$compute") || return 1
  rg=$(jq -er .resourceGroupName <<<"$compute") || return 1
  name=$(jq -er .name <<<"$compute") || return 1
  curl -sf --max-time 30 --retry 3 --retry-delay "$RETRY_DELAY" --retry-all-errors -X POST \
    -H "Authorization: Bearer $token" -H 'Content-Length: 0' \
    "$ARM/subscriptions/$sub/resourceGroups/$rg/providers/Microsoft.Compute/virtualMachines/$name/deallocate?api-version=2024-07-01" \
    >/dev/null || return 1
  log "deallocation of $name requested"
}

mkdir -p "$STATE_DIR" && chmod 700 "$STATE_DIR" || exit 1
max_uptime=${BENCHVM_MAX_UPTIME:-$(read_small /etc/benchvm/max-uptime-s || echo 21600)}
number "$max_uptime" || max_uptime=21600
uptime_s=$(cut -d. -f1 "$UPTIME_FILE")
now=$(date +%s)

reason=""
armed=""
if [ "$uptime_s" -gt "$max_uptime" ]; then
  reason="up for $uptime_s s, over the hard cap of $max_uptime s"
fi
if silence=$(read_small "$RUN_DIR/armed"); then
  if number "$silence"; then
    armed=yes
    beat=$(stat -c %Y "$RUN_DIR/heartbeat" 2>/dev/null || echo 0)
    if [ -z "$reason" ] && [ $((now - beat)) -gt "$silence" ]; then
      reason="heartbeat silent for $((now - beat)) s (allowed $silence s)"
    fi
  else
    log "ignoring malformed $RUN_DIR/armed"
  fi
fi
[ -n "$reason" ] || exit 0

# A requested deallocation takes a while to land: ask again only after ten minutes.
if last=$(read_small "$STATE_DIR/requested") && number "$last" && [ $((now - last)) -lt 600 ]; then
  log "$reason; deallocation requested $((now - last)) s ago"
  exit 0
fi
attempts=$(read_small "$STATE_DIR/attempts" || echo 0)
number "$attempts" || attempts=0
attempts=$((attempts + 1))
echo "$attempts" >"$STATE_DIR/attempts"
log "$reason: stopping the run, deallocating (attempt $attempts)"
[ -z "$armed" ] || stop_agent
if deallocate; then
  echo "$now" >"$STATE_DIR/requested"
  rm -f "$RUN_DIR/armed"
  exit 0
fi
log "deallocation failed (attempt $attempts): still armed, retrying in a minute"
exit 1
