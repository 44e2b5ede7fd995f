#!/usr/bin/env bash
# Installs the Debian packages the benchmark suite needs (bench/run.ts), only those
# that are missing. The peers and load generators are never bundled: they come from
# Debian, the one registry every machine of this project reaches.
#
#   bash scripts/test-tools/ensure-debs.sh            # the bench set
#   bash scripts/test-tools/ensure-debs.sh wrk nginx  # only these
#
# Without root it installs nothing and prints the apt-get line to run instead
# (exit 1). Safe to run concurrently (flock): dpkg takes its own lock and fails
# at once rather than waiting, which would fail a second parallel caller.
set -euo pipefail

# Package → the command it provides, which is how "missing" is decided (a package
# can be half there after an interrupted install; the binary is what the bench runs).
declare -A COMMAND_OF=(
  [nginx]=nginx
  [haproxy]=haproxy
  [caddy]=caddy
  [wrk]=wrk
  [nghttp2-client]=h2load
)
DEFAULT_PACKAGES=(nginx haproxy caddy wrk nghttp2-client)

packages=("$@")
[[ ${#packages[@]} -gt 0 ]] || packages=("${DEFAULT_PACKAGES[@]}")

missing=()
for pkg in "${packages[@]}"; do
  cmd=${COMMAND_OF[$pkg]:-$pkg}
  # Debian puts nginx and haproxy in /usr/sbin, which a non-login PATH can lack.
  if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$cmd && ! -x /usr/bin/$cmd ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "ensure-debs: all present (${packages[*]})" >&2
  exit 0
fi

line="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "ensure-debs: missing ${missing[*]}; as root, run:" >&2
  echo "  $line" >&2
  exit 1
fi

lock=/tmp/pyserve-ensure-debs.lock
exec 9>"$lock"
flock 9

# The peers' packages start their service on install (nginx would take port 80 and
# stay running). A policy-rc.d answering 101 tells invoke-rc.d not to start
# anything, as container images do; one already present is left alone.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  added_policy=1
fi
cleanup() { [[ $added_policy -eq 1 ]] && rm -f "$policy"; true; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
echo "ensure-debs: installing ${missing[*]}" >&2
# Package lists on a fresh machine are empty or stale until an update.
if ! apt-get update -qq >&2; then
  echo "ensure-debs: apt-get update failed; run: $line" >&2
  exit 1
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
  echo "ensure-debs: apt-get install failed; run: $line" >&2
  exit 1
fi
echo "ensure-debs: installed ${missing[*]}" >&2
