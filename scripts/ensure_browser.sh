#!/usr/bin/env bash
# The console's browser tests drive Debian's Chromium through Playwright; Chinese needs a CJK font,
# a resident's 😊 a colour emoji font (Debian's fonts-noto-color-emoji).
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
fc-list 2>/dev/null | grep -qi "wenquanyi\|wqy" || need+=(fonts-wqy-microhei)
fc-list 2>/dev/null | grep -qi "emoji" || need+=(fonts-noto-color-emoji)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" fontconfig >/dev/null
fi
command -v chromium >/dev/null && echo "chromium: $(chromium --version 2>/dev/null)"
