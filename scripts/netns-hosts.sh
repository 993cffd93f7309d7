#!/usr/bin/env bash
# Test hosts as network namespaces on a private bridge, for test/hosts/ (issue 15: several hosts, no shared disk).
#
#   scripts/netns-hosts.sh up      build the bridge and the four hosts (removes leftovers of an earlier run first)
#   scripts/netns-hosts.sh down    kill what runs inside the hosts, delete them and the bridge (safe to repeat)
#   scripts/netns-hosts.sh check   exit 0 when this machine can build them (root, `ip`, netns, veth, bridge)
#
# Network 10.201.0.0/24 on bridge besh-hbr0 in the root namespace, which holds 10.201.0.1 so the test process
# (the client) reaches the API over the bridge. Hosts: besh-svc 10.201.0.2 (PostgreSQL, Temporal, S3, simulator),
# besh-api 10.201.0.10, besh-w1 10.201.0.11, besh-w2 10.201.0.12. No namespace gets a default route, and the root
# namespace's forwarding is left as it is, so nothing in them reaches beyond the bridge.
set -euo pipefail

BRIDGE=besh-hbr0
ROOT_ADDR=10.201.0.1
PREFIX=24
# name:address:host-side veth (interface names are at most 15 characters)
HOSTS=(besh-svc:10.201.0.2:bh-svc besh-api:10.201.0.10:bh-api besh-w1:10.201.0.11:bh-w1 besh-w2:10.201.0.12:bh-w2)

down() {
  local spec ns pids
  for spec in "${HOSTS[@]}"; do
    ns=${spec%%:*}
    ip netns list 2>/dev/null | awk '{print $1}' | grep -qxF "$ns" || continue
    # Every process in a test host was started by a test run: end them by id before the namespace goes.
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then
      # shellcheck disable=SC2086
      kill -9 $pids 2>/dev/null || true
      for _ in $(seq 50); do [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break; sleep 0.1; done
    fi
    ip netns del "$ns" 2>/dev/null || true
  done
  for spec in "${HOSTS[@]}"; do
    local veth=${spec##*:}
    ip link del "$veth" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
}

up() {
  down
  ip link add "$BRIDGE" type bridge
  ip addr add "$ROOT_ADDR/$PREFIX" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local spec ns rest addr veth
  for spec in "${HOSTS[@]}"; do
    ns=${spec%%:*}
    rest=${spec#*:}
    addr=${rest%%:*}
    veth=${rest#*:}
    ip netns add "$ns"
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$BRIDGE"
    ip link set "$veth" up
    ip -n "$ns" addr add "$addr/$PREFIX" dev eth0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
  done
}

check() {
  [ "$(id -u)" = 0 ] || { echo "not root"; exit 1; }
  command -v ip >/dev/null || { echo "no 'ip' command (iproute2)"; exit 1; }
  local probe="besh-probe-$$"
  ip netns add "$probe" 2>/dev/null || { echo "cannot create a network namespace"; exit 1; }
  local ok=0
  ip link add bhp$$ type veth peer name eth0 netns "$probe" 2>/dev/null || ok=1
  ip link del bhp$$ 2>/dev/null || true
  ip netns del "$probe" 2>/dev/null || true
  [ $ok = 0 ] || { echo "cannot create a veth pair"; exit 1; }
  ip link add besh-probebr type bridge 2>/dev/null || { echo "cannot create a bridge"; exit 1; }
  ip link del besh-probebr
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  check) check ;;
  *) echo "usage: $0 up|down|check" >&2; exit 2 ;;
esac
