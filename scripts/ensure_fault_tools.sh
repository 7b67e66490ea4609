#!/usr/bin/env bash
# tests/test_faults.py cuts PostgreSQL and Redis off silently, as a network cut does (nothing
# refused, nothing answered), by dropping their packets with nftables (tests.harness.SilentNetwork).
# Installs Debian's nftables where nft is missing.
set -euo pipefail
if ! command -v nft >/dev/null && [ ! -x /usr/sbin/nft ]; then
  echo "installing nftables" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends nftables >/dev/null
fi
