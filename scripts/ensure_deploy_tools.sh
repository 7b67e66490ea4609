#!/usr/bin/env bash
# tests/test_deploy_samples.py checks deploy/ with the tools that load it: nginx (`nginx -t`, and
# nginx in front of a real serve) and systemd-analyze (`verify` on the unit). Installs Debian's
# nginx-light and systemd where missing; openssl makes the test's throwaway certificate.
set -euo pipefail
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
