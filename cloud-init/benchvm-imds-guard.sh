#!/bin/sh
# benchvm's metadata guard, run at every boot by benchvm-imds-guard.service, before sshd
# accepts the first run. Only root may reach the instance metadata service
# (169.254.169.254): the dead-man switch (root) asks it for the VM's managed-identity token
# to deallocate the VM, while the code a pull request benchmarks runs as the bench user and
# must not get that token (with it, it could act on the VM through ARM). The rule is added
# once, however often this runs. The address can be overridden for tests.
set -eu
ADDR=${BENCHVM_IMDS_ADDR:-169.254.169.254}
# shellcheck disable=SC2086 # the rule is meant to split into iptables' arguments
RULE="OUTPUT -d $ADDR -m owner ! --uid-owner 0 -j REJECT"
# shellcheck disable=SC2086
iptables -C $RULE 2>/dev/null || iptables -I $RULE
