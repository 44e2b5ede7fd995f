// The one place that fixes the order of request and response processing. A
// route's chain is compiled from its snapshot config when the snapshot
// arrives; phases a route does not use contribute nothing (a hook list is
// null when empty), so the request path pays only for what a route has.
//
// Phases, in order, and why in that order:
//   1. access              IP rules, authentication. First: nothing about a
//                          request that will be refused is worth doing.
//                          (none yet)
//   2. limits              body size (declared length here, streamed length in
//                          the body phase), rate limits. Before any transform,
//                          so limits apply to what the client sent.
//   3. request transforms  path and Host rewrites, header edits
//                          (transforms/: compiled per route, applied where
//                          the upstream request is built).
//   4. cache lookup        (none yet)
//   5. upstream or local reply
//   6. response transforms headers (route header edits are applied as the
//                          head is built, server/headers.ts), CORS, security
//                          headers, then compression
//                          last: every other transform works on the plain
//                          body, and Content-Length/ETag edits by compression
//                          must describe the final bytes.
//   7. log                 the access log line (server/handler.ts), always.
import type { Readable, Transform } from 'node:stream';
import type { Route } from '../snapshot/schema.ts';
import type { RequestContext } from '../server/context.ts';
import { declaredLengthHook, streamedBodyHook } from './body-limit.ts';
import { compressionHook, DEFAULT_COMPRESSION } from './compression.ts';
import type { CompressionSettings } from './compression.ts';
import type { LocalReply, RequestBodyHook, RequestHeadLike, RequestHook, RequestLike, ResponseHead, ResponseHook } from './types.ts';

/** Global defaults of the per-route features (flags), used where a route sets nothing. */
export interface FeatureDefaults {
  /** Largest request body in bytes, 0 for none. */
  readonly maxBodyBytes: number;
  /** Longest client silence while a request body is read, 0 for none. Listener-wide. */
  readonly clientBodyTimeoutMs: number;
  readonly compression: CompressionSettings;
}

/** Defaults: 1 MiB bodies (ingress-nginx `proxy-body-size`), 60 s body timeout, compression off. */
export const DEFAULT_FEATURES: FeatureDefaults = {
  maxBodyBytes: 1024 * 1024,
  clientBodyTimeoutMs: 60_000,
  compression: DEFAULT_COMPRESSION,
};

/** A route's compiled hooks, each list in phase order, null when empty. */
export interface RouteChain {
  readonly onRequest: readonly RequestHook[] | null;
  readonly requestBody: readonly RequestBodyHook[] | null;
  readonly onResponse: readonly ResponseHook[] | null;
}

function list<T>(...hooks: (T | null)[]): readonly T[] | null {
  const present = hooks.filter((h): h is T => h !== null);
  return present.length > 0 ? present : null;
}

/** Compile a route's chain; phase order is the order of the arguments below. */
export function compileChain(route: Route, defaults: FeatureDefaults): RouteChain {
  const maxBodyBytes = route.limits?.maxBodyBytes ?? defaults.maxBodyBytes;
  const c = route.compression;
  const compression: CompressionSettings = {
    enabled: c?.enabled ?? defaults.compression.enabled,
    minLength: c?.minLength ?? defaults.compression.minLength,
    contentTypes: c?.contentTypes ?? defaults.compression.contentTypes,
    algorithms: c?.algorithms ?? defaults.compression.algorithms,
  };
  return {
    onRequest: list(/* access: none yet */ declaredLengthHook(maxBodyBytes)),
    requestBody: list(streamedBodyHook(maxBodyBytes, defaults.clientBodyTimeoutMs)),
    onResponse: list(/* CORS, security headers: none yet (header edits: transforms/) */ compressionHook(compression)),
  };
}

/** A chain that does nothing (direct routes, tests). */
export const EMPTY_CHAIN: RouteChain = { onRequest: null, requestBody: null, onResponse: null };

/** Run the request hooks; the first reply wins. */
export function runRequestHooks(chain: RouteChain, req: RequestHeadLike, ctx: RequestContext): LocalReply | undefined {
  if (chain.onRequest === null) return undefined;
  for (const hook of chain.onRequest) {
    const reply = hook(req, ctx);
    if (reply !== undefined) return reply;
  }
  return undefined;
}

/** The request body as the upstream should read it. */
export function requestBodyFor(chain: RouteChain, req: RequestLike): Readable {
  let body: Readable = req;
  if (chain.requestBody !== null) for (const hook of chain.requestBody) body = hook(req, body);
  return body;
}

/** Run the response hooks over the head; returns the body transforms to apply, in order, or null. */
export function runResponseHooks(chain: RouteChain, req: RequestHeadLike, head: ResponseHead): Transform[] | null {
  if (chain.onResponse === null) return null;
  let transforms: Transform[] | null = null;
  for (const hook of chain.onResponse) {
    const t = hook(req, head);
    if (t !== undefined) (transforms ??= []).push(t);
  }
  return transforms;
}
