#!/usr/bin/env bash
# Builds h2spec (the HTTP/2 conformance tester) from the Go module proxy for
# test/integration/dataplane-h2spec.test.ts. Release binaries are downloads from a
# site this project's machines cannot reach.
#
# h2spec v2 has no go.mod (the proxy serves it as v2.2.1+incompatible), so its
# dependencies would float to whatever is newest. A throwaway helper module requires
# h2spec and pins each dependency, then `go build`s h2spec's own main package.
#
# Prints the directory holding the binary as the last line of stdout; logs go to
# stderr. Cached by version under ${PYSERVE_TOOLS_CACHE:-$HOME/.cache/pyserve-tools};
# when the binary is there it does nothing. Safe to run concurrently (flock), and a
# build that dies halfway leaves no directory behind (built in a temp dir, then renamed).
#
# Env: PYSERVE_TOOLS_CACHE  cache root (default ~/.cache/pyserve-tools)
#      H2SPEC_VERSION       override the pin below (for trying a bump)
set -euo pipefail

# Pinned: bump together with docs/http2.md. The dependency pins are the versions the
# module proxy resolved for h2spec's imports when this was written.
H2SPEC_VERSION=${H2SPEC_VERSION:-v2.2.1}
COBRA_VERSION=v1.10.2
XNET_VERSION=v0.62.0
COLOR_VERSION=v1.19.0

cache_root=${PYSERVE_TOOLS_CACHE:-$HOME/.cache/pyserve-tools}
dest=$cache_root/h2spec-$H2SPEC_VERSION

if [[ -x $dest/h2spec ]]; then
  echo "$dest"
  exit 0
fi

command -v go >/dev/null || { echo "build-h2spec: go is required" >&2; exit 1; }
command -v flock >/dev/null || { echo "build-h2spec: flock is required (util-linux)" >&2; exit 1; }
mkdir -p "$cache_root"

exec 9>"$cache_root/.h2spec-$H2SPEC_VERSION.lock"
if ! flock -n 9; then
  echo "build-h2spec: another build holds the lock; waiting for it" >&2
  flock 9
fi
if [[ -x $dest/h2spec ]]; then
  echo "$dest"
  exit 0
fi

work=$(mktemp -d "$cache_root/.h2spec-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/mod"
start=$(date +%s)

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false"
cat >"$work/mod/go.mod" <<EOF
module pyserve.test/h2spec

go 1.22

require (
	github.com/summerwind/h2spec $H2SPEC_VERSION+incompatible
	github.com/spf13/cobra $COBRA_VERSION
	golang.org/x/net $XNET_VERSION
	github.com/fatih/color $COLOR_VERSION
)
EOF
echo "build-h2spec: building h2spec $H2SPEC_VERSION" >&2
(
  cd "$work/mod"
  # Resolves go.sum (checked against the checksum database) for the pinned set.
  go mod download github.com/summerwind/h2spec >&2
  go build -trimpath -ldflags "-s -w -X main.VERSION=${H2SPEC_VERSION#v} -X main.COMMIT=module-proxy" \
    -o "$work/bin/h2spec" github.com/summerwind/h2spec/cmd/h2spec >&2
)
"$work/bin/h2spec" --version >&2
total=$(( $(date +%s) - start ))
cat >"$work/bin/build-info.txt" <<EOF
h2spec $H2SPEC_VERSION (cobra $COBRA_VERSION, x/net $XNET_VERSION, color $COLOR_VERSION)
built $(date -u +%Y-%m-%dT%H:%M:%SZ) with $(go version | cut -d' ' -f3) in ${total}s
EOF
rm -rf "$dest"
mv "$work/bin" "$dest"
echo "build-h2spec: built in ${total}s into $dest" >&2
echo "$dest"
