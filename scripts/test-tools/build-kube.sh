#!/usr/bin/env bash
# Builds a real kube-apiserver and etcd from the Go module proxy for the controller's
# integration tests (test/tools/kube.ts). Release binaries and container images are
# downloads from sites this project's machines cannot reach, and there is no Docker.
#
#   kube-apiserver: a throwaway helper module requires k8s.io/kubernetes at the pinned
#     release and `replace`s every staging module (k8s.io/api, k8s.io/apiserver, ... —
#     read from that release's own go.mod replace block) with its published v0.X.Y tag,
#     since k8s.io/kubernetes requires them at v0.0.0, which the proxy does not serve.
#   etcd: a tiny main calling etcdmain.Main(os.Args) from go.etcd.io/etcd/server/v3.
#
# Prints the directory holding both binaries as the last line of stdout; logs go to
# stderr. Cached by version under ${PYSERVE_TOOLS_CACHE:-$HOME/.cache/pyserve-tools};
# when the binaries are there it does nothing. Safe to run concurrently (flock), and a
# build that dies halfway leaves no directory behind (built in a temp dir, then renamed).
#
# Env: PYSERVE_TOOLS_CACHE  cache root (default ~/.cache/pyserve-tools)
#      KUBE_VERSION, ETCD_VERSION  override the pins below (for trying a bump)
set -euo pipefail

# Pinned: bump together with docs/testing.md. Both build with Go 1.26.
# Kubernetes 1.35 is tested against etcd 3.6 (its go.mod pins the etcd 3.6 client).
KUBE_VERSION=${KUBE_VERSION:-v1.35.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}

cache_root=${PYSERVE_TOOLS_CACHE:-$HOME/.cache/pyserve-tools}
dest=$cache_root/kube-$KUBE_VERSION-etcd-$ETCD_VERSION

have_tools() {
  [[ -x $dest/kube-apiserver && -x $dest/etcd ]]
}

if have_tools; then
  echo "$dest"
  exit 0
fi

command -v go >/dev/null || { echo "build-kube: go is required (Go 1.26+)" >&2; exit 1; }
command -v flock >/dev/null || { echo "build-kube: flock is required (util-linux)" >&2; exit 1; }
[[ $KUBE_VERSION =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { echo "build-kube: KUBE_VERSION must look like v1.35.4, got $KUBE_VERSION" >&2; exit 1; }
# The staging modules' tags track the release: Kubernetes v1.35.4 <-> k8s.io/api v0.35.4.
staging_version=v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}
kube_minor=${BASH_REMATCH[1]}
mkdir -p "$cache_root"

# One builder at a time: parallel test workers or CI jobs would otherwise race two
# cold builds on a 2-core machine. The second waits, then finds the binaries.
exec 9>"$cache_root/.kube-$KUBE_VERSION-etcd-$ETCD_VERSION.lock"
if ! flock -n 9; then
  echo "build-kube: another build holds the lock; waiting for it" >&2
  flock 9
fi
if have_tools; then
  echo "$dest"
  exit 0
fi

work=$(mktemp -d "$cache_root/.kube-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
start=$(date +%s)

# Static binaries; never download another Go toolchain behind our back; let the go
# command write go.mod/go.sum of the helper modules as it resolves them.
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false"
build_flags=(-trimpath)

# --- etcd -------------------------------------------------------------------------
etcd_start=$(date +%s)
echo "build-kube: building etcd $ETCD_VERSION" >&2
mkdir -p "$work/etcd"
cat >"$work/etcd/go.mod" <<EOF
module pyserve.test/etcd

go 1.26
EOF
cat >"$work/etcd/main.go" <<'EOF'
// etcd built from the module proxy: the same entry point as etcd's own binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
(
  cd "$work/etcd"
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
  go mod tidy >&2
  go build "${build_flags[@]}" -ldflags '-s -w' -o "$work/bin/etcd" . >&2
)
"$work/bin/etcd" --version >&2
etcd_secs=$(( $(date +%s) - etcd_start ))

# --- kube-apiserver ---------------------------------------------------------------
kube_start=$(date +%s)
echo "build-kube: building kube-apiserver $KUBE_VERSION (staging modules at $staging_version); this takes a while" >&2
kube_mod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
[[ -f $kube_mod ]] || { echo "build-kube: could not download k8s.io/kubernetes@$KUBE_VERSION" >&2; exit 1; }
# Every `k8s.io/x => ./staging/src/k8s.io/x` line of the release's replace block.
mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$kube_mod")
(( ${#staging[@]} > 10 )) || { echo "build-kube: found only ${#staging[@]} staging modules in $kube_mod" >&2; exit 1; }
mkdir -p "$work/kube"
{
  echo "module pyserve.test/kube"
  echo
  echo "go 1.25.0"
  echo
  echo "require k8s.io/kubernetes $KUBE_VERSION"
  echo
  echo "replace ("
  for m in "${staging[@]}"; do echo "	$m => $m $staging_version"; done
  echo ")"
} >"$work/kube/go.mod"
# The version the server reports at /version (its release builds stamp it the same way).
vpkg=k8s.io/component-base/version
kube_ldflags="-s -w -X $vpkg.gitVersion=$KUBE_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$kube_minor"
kube_ldflags+=" -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"
(
  cd "$work/kube"
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" >&2
  go build "${build_flags[@]}" -ldflags "$kube_ldflags" -o "$work/bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2
)
"$work/bin/kube-apiserver" --version >&2
kube_secs=$(( $(date +%s) - kube_start ))

total=$(( $(date +%s) - start ))
cat >"$work/bin/build-info.txt" <<EOF
kube-apiserver $KUBE_VERSION (staging $staging_version), etcd $ETCD_VERSION
built $(date -u +%Y-%m-%dT%H:%M:%SZ) with $(go version | cut -d' ' -f3) on $(nproc) cores
etcd ${etcd_secs}s, kube-apiserver ${kube_secs}s, total ${total}s
EOF
rm -rf "$dest"
mv "$work/bin" "$dest"
echo "build-kube: built in ${total}s (etcd ${etcd_secs}s, kube-apiserver ${kube_secs}s) into $dest" >&2
echo "$dest"
