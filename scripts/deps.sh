#!/usr/bin/env bash
# Installs what the test suite needs on a fresh machine (CI runs as root on Debian).
# Network namespaces need no installation: the tests create them with unshare(2).
set -euo pipefail
need=()
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
# The tcpdump tests preload a tiny initgroups shim built with cc (see cmd/fastfeed/replay_test.go).
command -v cc >/dev/null 2>&1 || need+=(gcc)
# The multi-host scenario builds hosts from network namespaces, veth pairs and a bridge.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
# The browser test of the live page (opshttp TestBrowser) drives Debian's chromium.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The deployment test checks docs/fastfeed-feed.service with systemd-analyze verify.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# NATS binaries, pinned, built into bin/ once: the official server for the multi-host
# cluster tests (about 45 s to build on 2 cores), and with --bench the NATS CLI for
# `nats bench` (about 3 min, mostly downloads), which the test suite does not need.
root="$(cd "$(dirname "$0")/.." && pwd)"
go="${GO:-go}"
if [ ! -x "$root/bin/nats-server" ]; then
  echo "deps: building bin/nats-server v2.15.3"
  GOBIN="$root/bin" "$go" install github.com/nats-io/nats-server/v2@v2.15.3
fi
if [ "${1:-}" = "--bench" ] && [ ! -x "$root/bin/nats" ]; then
  echo "deps: building bin/nats (natscli v0.5.0)"
  GOBIN="$root/bin" "$go" install github.com/nats-io/natscli/nats@v0.5.0
fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing ${need[*]}; install them (as root: apt-get install ${need[*]})" >&2
  exit 0
fi
echo "deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq "${need[@]}" >/dev/null
