#!/usr/bin/env bash
# Install Debian packages when a tool is missing; needs root (as on the build machines).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "missing system packages ($*): install them, or run make as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "$@"
