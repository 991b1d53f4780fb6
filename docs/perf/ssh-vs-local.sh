#!/usr/bin/env bash
# Issue 4's acceptance: `benchvm run --ssh` against a real sshd on loopback gives the same
# comment as `--local` for the demo fixtures. Both runs use the same seed; the comments are
# compared with the figures masked (timings and measured values differ run to run), and both
# reports are checked against fixtures/expected.json. Needs openssh-server and the musl
# target. Results land in results/ssh-vs-local-<unix time>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p benchvm
cargo build --release -q --target x86_64-unknown-linux-musl -p benchvm-agent
bin=target/release/benchvm
out=$PWD/results/ssh-vs-local-$(date +%s)
mkdir -p "$out"
repo=$out/textkit
"$bin" fixture-repo "$repo" >/dev/null

# A throw-away sshd on loopback, as the tests start it.
d=$(mktemp -d)
trap 'kill $(cat "$d/sshd.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$d"' EXIT
ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$d/user_key"
cp "$d/user_key.pub" "$d/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$d/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $d/host_key
AuthorizedKeysFile $d/authorized_keys
PidFile $d/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
SetEnv ${SSL_CERT_FILE:+SSL_CERT_FILE=$SSL_CERT_FILE} ${PIP_CERT:+PIP_CERT=$PIP_CERT} BENCHVM_SSHD=1
CONF
mkdir -p /run/sshd
/usr/sbin/sshd -f "$d/sshd_config"
for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && break; sleep 0.1; done

common=(--repo "$repo" --base main --head perf/speedups --seed 42 --markdown)
code=0
/usr/bin/time -f "local: %e s wall" "$bin" run --local "${common[@]}" --results "$out/local" >"$out/local.md" || code=$?
[ "$code" -le 1 ] || { echo "local run failed ($code)" >&2; exit 1; }
code=0
/usr/bin/time -f "ssh: %e s wall" "$bin" run --ssh --ssh-host 127.0.0.1 --ssh-port "$port" --ssh-user "$(id -un)" \
  --ssh-key "$d/user_key" --ssh-host-key "$(cat "$d/host_key.pub")" \
  --agent-binary target/x86_64-unknown-linux-musl/release/benchvm-agent \
  "${common[@]}" --results "$out/ssh" >"$out/ssh.md" || code=$?
[ "$code" -le 1 ] || { echo "ssh run failed ($code)" >&2; exit 1; }

python3 docs/perf/check_verdicts.py fixtures/expected.json "$out/local/report.json" "$out/ssh/report.json" | tee "$out/check.txt"
# The comments, figures masked: same sections, same benchmarks, same verdict words. The
# machine section and the pipeline timings differ by design (ssh adds upload spans).
mask() { sed -E -e '/<details><summary>(Pipeline timings|Machine)/,/<\/details>/d' -e 's/[-+−]?[0-9]+([.,][0-9]+)?/N/g' "$1"; }
if diff <(mask "$out/local.md") <(mask "$out/ssh.md") >"$out/comment.diff"; then
  echo "comments: identical once figures are masked"
else
  echo "comments differ beyond figures:"; cat "$out/comment.diff"; exit 1
fi
