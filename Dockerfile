# syntax=docker/dockerfile:1
#
# One image for both halves of PyServe; the Helm chart picks the program:
#   controller:  node dist/controller/main.js controller [flags]
#   dataplane:   node [node flags] dist/dataplane/main.js [flags]
# The image runs the compiled JavaScript (`npm run build`), not the TypeScript
# sources: Node's type stripping loads a WebAssembly TypeScript parser into every
# process, about 25 MiB each, and a dataplane pod runs one process per worker.
#
#   docker build -t pyserve:0.1.0 .

ARG BUILD_IMAGE=node:24-slim
# Distroless: Node and glibc, no shell, no package manager; ":nonroot" runs as
# uid/gid 65532, which the chart's securityContext also names.
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian13:nonroot

FROM ${BUILD_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no production dependency needs an install script, and none
# should run at build time. The cache mount keeps npm's download cache out of
# the layer.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${BUILD_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The build image's own Node 24 runs tsc: with --ignore-scripts, the `node`
# devDependency never fetched its binary, so no npm script is used here.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY controller ./controller
COPY dataplane ./dataplane
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

FROM ${RUNTIME_IMAGE}
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
# package.json carries "type": "module", which Node needs to run the .js files as
# ESM; the code also finds examples/ from it.
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY crds ./crds
# Local mode's --demo reads these; small, and keeps `pyserve local --demo` working in the image.
COPY examples ./examples
USER 65532:65532
# 8080/8443 traffic, 9901 dataplane admin, 9902 controller metrics.
EXPOSE 8080 8443 9901 9902
ENTRYPOINT ["/nodejs/bin/node"]
CMD ["dist/controller/main.js", "--help"]
