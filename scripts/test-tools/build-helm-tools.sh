#!/usr/bin/env bash
# Builds the chart test tools (helm, kubeconform) from the Go module proxy, because
# release binaries are downloads from sites this project's machines cannot reach.
#
# Also stages the OpenAPI (swagger) document of the Kubernetes release named below,
# from the k8s.io/kubernetes module (api/openapi-spec/swagger.json, which upstream
# dumps from a running kube-apiserver): kubeconform's usual schema source is a
# download from GitHub, unreachable here, so the chart test turns this document
# into kubeconform schemas itself.
#
# Prints the directory holding helm, kubeconform, kubernetes-openapi.json and
# kubernetes-version as the last line of stdout; logs go to stderr. Cached by
# version under ${PYSERVE_TOOLS_CACHE:-$HOME/.cache/pyserve-tools}, so a second run
# is instant; safe to run concurrently (flock), and a build that dies halfway
# leaves no directory behind (built in a temp dir, then renamed into place).
# Cold, on two cores: about 6 minutes (module downloads and compiling helm).
set -euo pipefail

# Pinned: bump together with docs/install.md. Both are served by the Go module proxy
# and build with Go 1.26.
HELM_MODULE=helm.sh/helm/v4
HELM_VERSION=v4.3.1
KUBECONFORM_MODULE=github.com/yannh/kubeconform
KUBECONFORM_VERSION=v0.8.0
# The release whose API the schemas describe: the same one build-kube.sh builds the
# test API server from (the chart test checks the two pins agree), so the module is
# downloaded once and kubeconform and the real server judge by the same API.
KUBERNETES_MODULE=k8s.io/kubernetes
KUBERNETES_VERSION=v1.35.4

cache_root=${PYSERVE_TOOLS_CACHE:-$HOME/.cache/pyserve-tools}
dest=$cache_root/helm-tools-helm-$HELM_VERSION-kubeconform-$KUBECONFORM_VERSION-k8s-$KUBERNETES_VERSION

have_tools() {
  [[ -x $dest/helm && -x $dest/kubeconform && -s $dest/kubernetes-openapi.json && -s $dest/kubernetes-version ]]
}

if have_tools; then
  echo "$dest"
  exit 0
fi

command -v go >/dev/null || { echo "build-helm-tools: go is required (Go 1.26+)" >&2; exit 1; }
command -v flock >/dev/null || { echo "build-helm-tools: flock is required (util-linux)" >&2; exit 1; }
mkdir -p "$cache_root"

# One builder at a time: parallel test workers or CI jobs would otherwise race
# two cold builds on a 2-core machine, and the loser's rename would fail.
exec 9>"$cache_root/.helm-tools.lock"
if ! flock -n 9; then
  echo "build-helm-tools: another build holds the lock; waiting for it" >&2
  flock 9
fi
if have_tools; then
  echo "$dest"
  exit 0
fi

work=$(mktemp -d "$cache_root/.helm-tools-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

# Static binaries; go install refuses modules with replace directives, and
# neither of these has any. Run from the temp dir so a go.mod around the
# caller's working directory cannot pull these into its module.
export CGO_ENABLED=0 GOBIN=$work/bin
cd "$work"

echo "build-helm-tools: building $HELM_MODULE/cmd/helm@$HELM_VERSION" >&2
# Helm's own Makefile stamps the version this way; without it `helm version` says only v4.x.
go install -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
  "$HELM_MODULE/cmd/helm@$HELM_VERSION" >&2

echo "build-helm-tools: building $KUBECONFORM_MODULE/cmd/kubeconform@$KUBECONFORM_VERSION" >&2
go install -trimpath -ldflags "-s -w -X main.version=$KUBECONFORM_VERSION" \
  "$KUBECONFORM_MODULE/cmd/kubeconform@$KUBECONFORM_VERSION" >&2

echo "build-helm-tools: fetching $KUBERNETES_MODULE@$KUBERNETES_VERSION for its OpenAPI document" >&2
# A plain module download (about 21 MB, shared with anything else that builds
# from that module); nothing in it is compiled.
k8s_dir=$(go mod download -json "$KUBERNETES_MODULE@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -n $k8s_dir && -s $k8s_dir/api/openapi-spec/swagger.json ]] || {
  echo "build-helm-tools: no api/openapi-spec/swagger.json in $KUBERNETES_MODULE@$KUBERNETES_VERSION" >&2
  exit 1
}
cp "$k8s_dir/api/openapi-spec/swagger.json" "$work/bin/kubernetes-openapi.json"
echo "$KUBERNETES_VERSION" > "$work/bin/kubernetes-version"

"$work/bin/helm" version >&2
"$work/bin/kubeconform" -v >&2

rm -rf "$dest"
mv "$work/bin" "$dest"
echo "build-helm-tools: built in $(( $(date +%s) - start ))s into $dest" >&2
echo "$dest"
