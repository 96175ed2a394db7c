#!/usr/bin/env bash
# Installs what `make bench` needs when it is missing: wrk and nginx from Debian, and the `bench`
# extra (user-agents, the uncached UA-parse baseline) into the virtualenv.
set -euo pipefail
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # the package starts a system nginx on port 80; the bench runs its own on an ephemeral port
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
    $SUDO systemctl stop nginx || true
  fi
fi
PY="${1:-.venv/bin/python}"
"$PY" -c "import user_agents" 2>/dev/null || "$PY" -m pip install --quiet -e '.[bench]'
