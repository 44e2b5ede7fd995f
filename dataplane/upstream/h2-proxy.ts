// Forwarding one request to an HTTP/2 upstream (clusters h2c, h2, grpc,
// grpcs) over node:http2, from either an HTTP/1.1 or an HTTP/2 client. Both
// bodies stream with backpressure, trailers pass through (gRPC puts its
// status there), and a reset from either side is passed on to the other.
// The route's middleware applies as on the HTTP/1.1 path (proxy.ts): the
// streamed body limits on the way up, compression on the way down.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { constants } from 'node:http2';
import { PassThrough, pipeline } from 'node:stream';
import type { Readable, Transform, Writable } from 'node:stream';
import type { ClientHttp2Stream, Http2ServerRequest, Http2ServerResponse, IncomingHttpHeaders as H2IncomingHeaders } from 'node:http2';
import type { CompiledRoute, ForwardPlan } from '../config/compile.ts';
import type { RequestContext } from '../server/context.ts';
import { clientResponseHeaders, upstreamRequestHeaders } from '../server/headers.ts';
import { replyError } from '../server/local-reply.ts';
import type { ClusterProtocol, RetryOn } from '../snapshot/schema.ts';
import type { UpstreamEndpoint } from './endpoint.ts';
import { classifyUpstreamError } from './errors.ts';
import type { UpstreamFailure } from './errors.ts';
import { H2_CONNECT_TIMEOUT, h2ErrorName } from './h2-sessions.ts';
import type { H2SessionRegistry } from './h2-sessions.ts';
import type { ForwardTarget, ProxyDeps } from './proxy.ts';
import type { RouteTransforms } from '../transforms/index.ts';
import type { HeaderEdits } from '../transforms/headers.ts';
import type { Outcome } from './health-state.ts';
import { errorCondition } from './retry.ts';
import { requestBodyFor, runResponseHooks } from '../middleware/order.ts';
import { BodyLimitError, replyBodyRefused } from '../limits/body.ts';

/** What {@link proxyHttp2} needs beyond the HTTP/1.1 proxy's dependencies. */
export interface H2ProxyDeps extends ProxyDeps {
  /**
   * Outlier detection's view of this exchange: the upstream's status class
   * once its head arrives, or a connect failure / reset before any head.
   */
  readonly onOutcome?: (outcome: Outcome) => void;
  /**
   * Asked when this try failed before anything reached the client: an upstream
   * error or reset (`condition`), or a response head (`status`). True: the
   * caller starts another try, and this one stands down without answering.
   */
  readonly retryBeforeResponse?: (why: { condition: RetryOn } | { status: number }) => boolean;
  /** Time to this try's response head (a retry policy's `perTryTimeoutMs`). */
  readonly headTimeoutMs?: number;
  readonly h2: H2SessionRegistry;
}

/** Whether a cluster protocol is spoken over HTTP/2. */
export function isHttp2Protocol(p: ClusterProtocol): boolean {
  return p === 'h2c' || p === 'h2' || p === 'grpc' || p === 'grpcs';
}

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = constants;

/** Whether the client request carries a body (HTTP/2 needs no length header for one). */
export function requestHasBody(req: IncomingMessage): boolean {
  const stream = (req as unknown as Partial<Http2ServerRequest>).stream;
  if (stream !== undefined) return !stream.endAfterHeaders;
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

/** Whether a request body that emitted 'end' was received whole (not cut by a reset or a dead connection). */
function requestComplete(req: IncomingMessage): boolean {
  const stream = (req as unknown as Partial<Http2ServerRequest>).stream;
  if (stream !== undefined) return !stream.destroyed && (stream.rstCode ?? NGHTTP2_NO_ERROR) === NGHTTP2_NO_ERROR;
  return req.complete;
}

/**
 * The request body to hand an HTTP/1.1 upstream. Node's HTTP/2 compatibility
 * API ends a request's body when the client resets the stream, exactly as if
 * it were complete, so it would go upstream as a whole body. For
 * HTTP/2 clients the body is passed through a stream that fails instead; an
 * HTTP/1.1 request errors by itself and is returned as it is.
 */
export function guardRequestBody(body: Readable, req: IncomingMessage): Readable {
  if ((req as unknown as Partial<Http2ServerRequest>).stream === undefined) return body;
  const guarded = new PassThrough();
  body.pipe(guarded, { end: false });
  body.once('end', () => {
    if (requestComplete(req)) guarded.end();
    else guarded.destroy(Object.assign(new Error('client reset the request stream'), { code: 'PYSERVE_CLIENT_RESET' }));
  });
  body.once('error', (err) => guarded.destroy(err));
  return guarded;
}

/** The error worth classifying: Node wraps session failures as ERR_HTTP2_STREAM_CANCEL with a cause. */
function rootCause(err: unknown): unknown {
  let e = err;
  for (let i = 0; i < 5; i++) {
    const cause = (e as { cause?: unknown } | null)?.cause;
    if (cause === undefined || cause === null) break;
    e = cause;
  }
  return e;
}

/** The retry condition of an upstream stream error that means the endpoint's connection failed (connect, its timeout, a reset); undefined for others. */
function connectionFailure(err: unknown): 'connect-failure' | 'reset' | undefined {
  const root = rootCause(err);
  if ((root as { code?: unknown } | null)?.code === H2_CONNECT_TIMEOUT) return 'connect-failure';
  const condition = errorCondition(root);
  return condition === 'connect-failure' || condition === 'reset' ? condition : undefined;
}

function classify(err: unknown): UpstreamFailure {
  const root = rootCause(err);
  const code = (root as { code?: unknown } | null)?.code;
  if (code === H2_CONNECT_TIMEOUT) return { status: 504, kind: 'timeout', reason: 'upstream connect timeout' };
  return classifyUpstreamError(root);
}

/** Request head for the upstream: pseudo-headers from the request line, fields as the HTTP/1.1 proxy forwards them. */
function requestHeaders(req: IncomingMessage, ctx: RequestContext, target: ForwardTarget, endpoint: UpstreamEndpoint, tls: boolean, transforms: RouteTransforms): OutgoingHttpHeaders {
  const cl = req.headers['content-length'];
  const flat = upstreamRequestHeaders(req.rawHeaders, req.headers, {
    host: target.host,
    clientAddress: ctx.clientAddress,
    listenerPort: target.listenerPort,
    requestId: ctx.requestId,
    contentLength: cl !== undefined && req.headers['transfer-encoding'] === undefined ? cl : undefined,
    proto: ctx.secure ? 'https' : 'http',
    upstreamHost: transforms.host,
    edits: transforms.requestHeaders,
  });
  const out: OutgoingHttpHeaders = {
    ':method': req.method ?? 'GET',
    ':scheme': tls ? 'https' : 'http',
    ':authority': transforms.host ?? target.host ?? endpoint.key,
    ':path': target.pathAndQuery,
  };
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    if (name === 'host') continue;
    const value = flat[i + 1]!;
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
  }
  // `te: trailers` is the one TE value HTTP/2 allows, and gRPC servers expect it.
  const te = req.headers.te as string | string[] | undefined;
  if (te !== undefined && /(^|,)\s*trailers\s*(;|,|$)/i.test(String(te))) out.te = 'trailers';
  return out;
}

/** Response fields for the client: pseudo-headers dropped, hop-by-hop removed, request id set. */
function responseHeaders(headers: H2IncomingHeaders, requestId: string, edits: HeaderEdits | null): OutgoingHttpHeaders {
  const fields: Record<string, string | string[] | undefined> = {};
  for (const [name, value] of Object.entries(headers)) if (name.charCodeAt(0) !== 0x3a) fields[name] = value;
  return clientResponseHeaders(fields, requestId, edits);
}

/**
 * gRPC (and gRPC-Web) bodies are length-prefixed messages with their own
 * per-message compression; a Content-Encoding on top breaks every gRPC
 * client, whatever a route's compressible types say.
 */
function isGrpcResponse(headers: OutgoingHttpHeaders): boolean {
  const ct = headers['content-type'];
  return ct !== undefined && String(ct).trimStart().toLowerCase().startsWith('application/grpc');
}

function trailerFields(trailers: H2IncomingHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(trailers)) if (name.charCodeAt(0) !== 0x3a && value !== undefined) out[name] = value;
  return out;
}

/** Proxy `req` to an HTTP/2 upstream. Never throws; every outcome ends in a response or a reset. */
export function proxyHttp2(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RequestContext,
  route: CompiledRoute & { readonly action: ForwardPlan },
  cluster: string,
  endpoint: UpstreamEndpoint,
  protocol: ClusterProtocol,
  target: ForwardTarget,
  deps: H2ProxyDeps,
): void {
  const tls = protocol === 'h2' || protocol === 'grpcs';
  const clientStream = (res as unknown as Partial<Http2ServerResponse>).stream;
  const hasBody = requestHasBody(req);
  let upstream: ClientHttp2Stream;
  try {
    const session = deps.h2.get(endpoint, tls, route.timeouts.connectMs);
    // waitForTrailers: a body's END_STREAM waits until its end is asked for.
    // Without it, close(code) on a stream with nothing left to write ends
    // the writable side first, and that end goes out at once as END_STREAM
    // ahead of the RST_STREAM: the upstream would take a cut body (a client
    // that reset, a body over the limit) as complete. With it, a closed
    // stream never sends the end, and a complete body gets it as an empty
    // DATA frame (Node sends it when nobody listens for 'wantTrailers').
    upstream = session.request(requestHeaders(req, ctx, target, endpoint, tls, route.transforms), { endStream: !hasBody, waitForTrailers: hasBody });
  } catch (err) {
    // A header value Node's http2 refuses, or a session that closed in between.
    deps.log.debug({ err, requestId: ctx.requestId, upstream: endpoint.key }, 'upstream HTTP/2 request refused');
    if ((err as { code?: string }).code === 'ERR_HTTP2_INVALID_SESSION' && deps.retryBeforeResponse?.({ condition: 'reset' }) === true) return;
    replyError(res, ctx, 502, `upstream request could not be sent (${(err as { code?: string }).code ?? 'error'})`);
    return;
  }

  // 'refused': the route's body limits stopped the request body (413/408).
  // 'retry': this try stood down for another one (retryBeforeResponse).
  let aborted: 'client' | 'timeout' | 'refused' | 'retry' | undefined;
  let responded = false;
  let timer: NodeJS.Timeout | undefined;
  let headTimer: NodeJS.Timeout | undefined;
  const fail = (f: UpstreamFailure): void => {
    deps.metrics.upstreamErrors.inc({ cluster, kind: f.kind });
    replyError(res, ctx, f.status, f.reason);
  };
  /** Whether the caller takes over with another try; if so, this one is cancelled and silent from now on. */
  const standDownFor = (why: { condition: RetryOn } | { status: number }): boolean => {
    if (aborted !== undefined || res.headersSent || deps.retryBeforeResponse?.(why) !== true) return false;
    aborted = 'retry';
    clearTimeout(timer);
    clearTimeout(headTimer);
    res.off('close', onClientClose);
    upstream.close(NGHTTP2_CANCEL);
    return true;
  };
  // The whole request's time, retries included: a retry gets what is left.
  const requestMsLeft = route.timeouts.requestMs > 0 ? Math.max(1, route.timeouts.requestMs - (performance.now() - ctx.startedAt)) : 0;
  if (requestMsLeft > 0) {
    timer = setTimeout(() => {
      aborted ??= 'timeout';
      upstream.close(NGHTTP2_CANCEL);
      if (!res.headersSent) replyError(res, ctx, 504, 'request timeout');
      else {
        ctx.error = 'request timeout';
        res.destroy();
      }
    }, requestMsLeft);
  }
  if (deps.headTimeoutMs !== undefined && deps.headTimeoutMs > 0) {
    headTimer = setTimeout(() => {
      if (responded || aborted !== undefined || standDownFor({ condition: 'timeout' })) return;
      aborted = 'timeout';
      upstream.close(NGHTTP2_CANCEL);
      deps.metrics.upstreamErrors.inc({ cluster, kind: 'timeout' });
      replyError(res, ctx, 504, 'upstream response timeout');
    }, deps.headTimeoutMs);
  }
  // Inactivity in both directions: time to the response head, then between frames.
  upstream.setTimeout(route.timeouts.responseMs, () => {
    if (aborted !== undefined) return;
    aborted = 'timeout';
    upstream.close(NGHTTP2_CANCEL);
    deps.metrics.upstreamErrors.inc({ cluster, kind: 'timeout' });
    if (!res.headersSent) replyError(res, ctx, 504, responded ? 'upstream body timeout' : 'upstream response timeout');
    else {
      ctx.error = 'upstream body timeout';
      res.destroy();
    }
  });

  const onClientClose = (): void => {
    clearTimeout(timer);
    clearTimeout(headTimer);
    if (res.writableFinished || upstream.closed) return;
    aborted ??= 'client';
    if (!responded) {
      ctx.status = 499;
      ctx.error = 'client closed the connection';
    }
    // Pass the client's own reset code on (a gRPC cancel stays a CANCEL).
    upstream.close(clientStream?.rstCode !== undefined && clientStream.rstCode !== NGHTTP2_NO_ERROR ? clientStream.rstCode : NGHTTP2_CANCEL);
  };
  res.once('close', onClientClose);

  /** The body broke a limit while streaming: the upstream never gets the rest, nor an end. */
  const refuseBody = (err: BodyLimitError): void => {
    if (aborted !== undefined) return;
    aborted = 'refused';
    clearTimeout(timer);
    upstream.close(NGHTTP2_CANCEL);
    if (!res.headersSent) {
      replyBodyRefused(req, res, ctx, err.status, err.message);
      return;
    }
    // The upstream answered before reading the whole body: too late for a status.
    ctx.error = err.message;
    resetClient(res, clientStream, NGHTTP2_CANCEL);
  };

  if (hasBody) {
    // Limits phase (middleware/order.ts): the body is counted as it streams
    // and the client's silences are timed, as towards HTTP/1.1 upstreams.
    const body = requestBodyFor(route.chain, req);
    // END_STREAM goes upstream only for a body that really ended: an HTTP/2
    // client whose connection died also looks "ended" (see the response side).
    // Judged when the client's body ends; a limiter passes that end on later.
    let complete = false;
    req.once('end', () => (complete = requestComplete(req)));
    body.pipe(upstream, { end: false });
    body.once('end', () => {
      if (complete) upstream.end();
      else upstream.close(NGHTTP2_CANCEL);
    });
    // A limiter forwards the client's own errors, so this sees both kinds.
    body.once('error', (err) => {
      if (err instanceof BodyLimitError) refuseBody(err);
      else upstream.close(NGHTTP2_CANCEL);
    });
  }

  upstream.on('response', (headers, flags) => {
    responded = true;
    clearTimeout(headTimer);
    const status = Number(headers[':status']);
    // gRPC errors travel in grpc-status with HTTP 200, as Envoy's default
    // outlier detection also sees them: only the HTTP status counts here.
    deps.onOutcome?.(status >= 500 ? '5xx' : 'success');
    if (standDownFor({ status })) return;
    // The client may have gone in the same tick; its 'close' is not handled yet.
    if (aborted !== undefined || clientStream?.destroyed === true || res.destroyed) {
      upstream.close(NGHTTP2_CANCEL);
      return;
    }
    const out = responseHeaders(headers, ctx.requestId, route.transforms.responseHeaders);
    const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    let transforms: Transform[] | null = null;
    try {
      if (endStream && clientStream !== undefined && out['grpc-status'] !== undefined) {
        // gRPC Trailers-Only: keep it one header block that ends the stream, which
        // the compatibility API cannot produce (it always waits for trailers).
        for (const [name, value] of Object.entries(res.getHeaders())) if (!(name in out)) out[name] = value;
        clientStream.respond({ ':status': status, ...out }, { endStream: true });
        return;
      }
      // Response phase (compression): may edit the headers and add body
      // transforms. A head that ends the stream has no body to encode.
      if (!endStream && !ctx.grpc && !isGrpcResponse(out)) transforms = runResponseHooks(route.chain, req, { status, headers: out });
      res.writeHead(status, out);
    } catch (err) {
      for (const t of transforms ?? []) t.destroy();
      upstream.close(NGHTTP2_CANCEL);
      deps.log.debug({ err, requestId: ctx.requestId, upstream: endpoint.key }, 'invalid upstream response head');
      fail({ status: 502, kind: 'bad_response', reason: 'bad upstream response (INVALID_RESPONSE_HEAD)' });
      return;
    }
    if (endStream) {
      res.end();
      return;
    }
    let sink: Writable = res;
    if (transforms !== null) {
      sink = transforms[0]!;
      // A failure here destroys the response, which the access log reports as
      // incomplete; a broken upstream resets the client itself (below).
      pipeline([...transforms, res] as [Transform, ...Transform[], ServerResponse], () => undefined);
    }
    // Not `pipe`'s own end: when an upstream connection dies, Node ends the
    // readable side of its streams as if the body were complete (with a reset
    // code set), which would hand the client a silently truncated body.
    upstream.pipe(sink, { end: false });
    upstream.once('end', () => {
      if ((upstream.rstCode ?? NGHTTP2_NO_ERROR) === NGHTTP2_NO_ERROR) sink.end();
    });
  });
  upstream.on('trailers', (trailers) => {
    if (aborted === undefined && !res.writableEnded) res.addTrailers(trailerFields(trailers));
  });

  upstream.on('error', (err) => {
    // As towards HTTP/1.1 upstreams: a refused, timed-out or reset connection
    // before any response counts against the endpoint, a client's abort does not.
    const failed = connectionFailure(err);
    if (!responded && aborted !== 'client' && aborted !== 'refused' && aborted !== 'retry' && failed !== undefined) deps.onOutcome?.('connect-failure');
    if (aborted !== undefined) return;
    const f = classify(err);
    deps.log.debug({ err, requestId: ctx.requestId, upstream: endpoint.key }, f.reason);
    if (!responded && failed !== undefined && standDownFor({ condition: failed })) return;
    if (!responded) {
      fail(f);
      return;
    }
    // The 'close' that follows resets the client and counts the failure.
  });
  upstream.once('close', () => {
    clearTimeout(timer);
    if (aborted !== undefined || res.writableEnded) return;
    const code = upstream.rstCode;
    if (!responded) {
      // Closed without a response and without an 'error' (a NO_ERROR or REFUSED_STREAM reset, a GOAWAY).
      if (res.headersSent || standDownFor({ condition: 'reset' })) return;
      deps.metrics.upstreamErrors.inc({ cluster, kind: 'bad_response' });
      const status = code === NGHTTP2_REFUSED_STREAM ? 503 : 502;
      replyError(res, ctx, status, `upstream closed the stream without a response (${h2ErrorName(code)})`);
      return;
    }
    // After the head, a close without the body's end is a reset or a dropped
    // connection (a destroyed session closes its streams with NO_ERROR).
    if (!upstream.readableEnded || (code !== undefined && code !== NGHTTP2_NO_ERROR)) {
      deps.metrics.upstreamErrors.inc({ cluster, kind: 'bad_response' });
      ctx.error = `upstream closed the stream before the response was complete (${h2ErrorName(code)})`;
      resetClient(res, clientStream, code);
    }
  });
}

/** End a response that broke after its head: an HTTP/2 client gets the upstream's reset code, HTTP/1.1 a cut connection. */
function resetClient(res: ServerResponse, clientStream: Http2ServerResponse['stream'] | undefined, code: number | undefined): void {
  if (clientStream !== undefined && !clientStream.closed) clientStream.close(code !== undefined && code !== NGHTTP2_NO_ERROR ? code : constants.NGHTTP2_INTERNAL_ERROR);
  else res.destroy();
}
