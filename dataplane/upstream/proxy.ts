// Forwarding one request upstream. Both bodies are streamed: the client's
// request body is streamed to the upstream connection, and the upstream response
// body is piped to the client with backpressure, so a proxied body is never
// held in memory whole. The exception is a small body (≤ 64 KiB) on a route
// that retries or mirrors: it is kept so it can be sent more than once.
//
// A request takes a slot in its cluster (circuit breaking), then makes up to
// 1 + retry.attempts tries. Each try feeds outlier detection; only the
// response head decides about a retry, so nothing already sent to the client
// is ever sent twice.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import type { Readable, Transform } from 'node:stream';
import type { Logger } from 'pino';
import type { CompiledRoute, CompiledUpstreams, ForwardPlan } from '../config/compile.ts';
import type { DataplaneMetrics } from '../observability/metrics.ts';
import type { RequestContext } from '../server/context.ts';
import { clientResponseFieldLines, clientResponseHeaders, forwardedFieldsChecked, responseFieldsChecked, upstreamRequestHeaders } from '../server/headers.ts';
import { H1Request } from '../server/h1/request.ts';
import { H1Response } from '../server/h1/response.ts';
import { replyError } from '../server/local-reply.ts';
import { onResponseClose } from '../server/response-close.ts';
import { classifyUpstreamError } from './errors.ts';
import type { PoolRegistry } from './pool.ts';
import { guardRequestBody, isHttp2Protocol, requestHasBody } from './h2-proxy.ts';
import { forwardHttp2 } from './h2-forward.ts';
import type { H2SessionRegistry } from './h2-sessions.ts';
import { requestBodyFor, runResponseHooks } from '../middleware/order.ts';
import { BodyLimitError, replyBodyRefused } from '../limits/body.ts';
import type { ClusterBalancer, Member, PickInput } from './cluster-balancer.ts';
import { admit, release, replyOverloaded } from './admission.ts';
import { affinityCookie, chooseTarget, needsAffinityCookie, pickInputOf } from './choose.ts';
import { sendMirrors } from './mirror.ts';
import { errorCondition, methodRetryable, REPLAY_BODY_LIMIT, statusRetryable } from './retry.ts';
import { RequestTries } from './tries.ts';
import type { CompiledRetry } from './retry.ts';
import type { UpstreamHealth } from './health-state.ts';
import type { Exchange } from './h1/connection.ts';
import { UPSTREAM_CODES } from './h1/errors.ts';

/** What the proxy needs from the rest of the dataplane. */
export interface ProxyDeps {
  readonly pools: PoolRegistry;
  /** Sessions to HTTP/2 upstreams (h2c, h2, grpc, grpcs clusters). */
  readonly h2?: H2SessionRegistry;
  readonly metrics: DataplaneMetrics;
  readonly log: Logger;
  /** Outlier detection's input; absent in embeddings without health state. */
  readonly upstreamHealth?: UpstreamHealth;
}

/** The request target as received, split for forwarding. */
export interface ForwardTarget {
  /** Raw path and query to send upstream (origin-form). */
  readonly pathAndQuery: string;
  /** Host header value to send upstream. */
  readonly host: string | undefined;
  /** Local port the request arrived on. */
  readonly listenerPort: number;
}

/** A route whose action forwards to a cluster. */
export type ForwardRoute = CompiledRoute & { readonly action: ForwardPlan };

/** Read a small request body whole, through the route's body limits. */
function readWhole(body: Readable, done: (err: Error | null, buf?: Buffer) => void): void {
  const chunks: Buffer[] = [];
  body.on('data', (c: Buffer) => chunks.push(c));
  body.once('end', () => done(null, Buffer.concat(chunks)));
  body.once('error', (err) => done(err));
}

/** Proxy `req` along `route`. Never throws; every outcome ends in a response or a destroyed connection. */
export function proxyRequest(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RequestContext,
  route: ForwardRoute,
  upstreams: CompiledUpstreams,
  target: ForwardTarget,
  deps: ProxyDeps,
): void {
  const plan = route.action;
  const input = pickInputOf(req, ctx.clientAddress);
  const chosen = chooseTarget(plan, upstreams, input);
  const cluster = chosen.cluster;
  ctx.cluster = cluster;
  if (cluster === undefined) {
    replyError(res, ctx, 503, 'route has no backend with a weight above zero');
    return;
  }
  const balancer = chosen.balancer;
  if (balancer === undefined || chosen.member === undefined) {
    if (chosen.full) replyOverloaded(res, ctx, cluster, 'max_requests_per_endpoint', deps.metrics);
    else if (balancer !== undefined && balancer.ready.length > 0) replyError(res, ctx, 503, `no healthy endpoints for cluster "${cluster}"`);
    else replyError(res, ctx, 503, `no ready endpoints for cluster "${cluster}"`);
    return;
  }
  const first = chosen.member;
  ctx.upstream = first.endpoint.key;

  let released = false;
  const admission = admit(balancer.state, balancer.circuitBreaker, () => {
    onResponseClose(res, () => {
      if (released) return;
      released = true;
      release(balancer.state, balancer.circuitBreaker);
    });
    if (isHttp2Protocol(balancer.protocol) && deps.h2 !== undefined) {
      forwardHttp2(req, res, ctx, route, balancer, first, target, { ...deps, h2: deps.h2 });
      return;
    }
    forward(req, res, ctx, route, upstreams, balancer, first, target, deps, input);
  });
  if (admission.state === 'refused') {
    replyOverloaded(res, ctx, cluster, admission.limit, deps.metrics);
  } else if (admission.state === 'queued') {
    onResponseClose(res, admission.cancel);
  }
}

/** The HTTP/1.1 exchange: body handling, tries, and streaming the chosen response. */
function forward(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RequestContext,
  route: ForwardRoute,
  upstreams: CompiledUpstreams,
  balancer: ClusterBalancer,
  first: Member,
  target: ForwardTarget,
  deps: ProxyDeps,
  input: PickInput,
): void {
  const plan = route.action;
  const cluster = balancer.name;
  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  // An HTTP/2 client's body needs no length header; requestHasBody also looks at the stream.
  const hasBody = requestHasBody(req);
  const headers = upstreamRequestHeaders(req.rawHeaders, req.headers, {
    host: target.host,
    clientAddress: ctx.clientAddress,
    listenerPort: target.listenerPort,
    requestId: ctx.requestId,
    contentLength: hasBody && te === undefined ? cl : undefined,
    proto: ctx.secure ? 'https' : 'http',
    upstreamHost: route.transforms.host,
    edits: route.transforms.requestHeaders,
  });
  const fieldsChecked = forwardedFieldsChecked(req instanceof H1Request, { upstreamHost: route.transforms.host, edits: route.transforms.requestHeaders });

  let retry: CompiledRetry | undefined = plan.retry !== undefined && methodRetryable(plan.retry, ctx.method) ? plan.retry : undefined;
  const keepBody = hasBody && (retry !== undefined || plan.mirrors.length > 0) && te === undefined && cl !== undefined && Number(cl) <= REPLAY_BODY_LIMIT;
  // A streamed body is read once: such a request is never retried.
  if (hasBody && !keepBody) retry = undefined;

  // The try in progress; aborting the request aborts it.
  let current: Exchange | undefined;
  let aborted: 'client' | 'timeout' | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (route.timeouts.requestMs > 0) {
    timer = setTimeout(() => {
      aborted ??= 'timeout';
      current?.abort(new Error('request timeout'));
    }, route.timeouts.requestMs);
  }
  onResponseClose(res, () => {
    clearTimeout(timer);
    if (!res.writableFinished) {
      aborted ??= 'client';
      current?.abort(new Error('client closed the connection'));
    }
  });

  const upstreamError = (err: unknown, upstream: string): void => {
    const f = classifyUpstreamError(err);
    deps.metrics.upstreamErrors.inc({ cluster, kind: f.kind });
    deps.log.debug({ err, requestId: ctx.requestId, upstream }, f.reason);
    replyError(res, ctx, f.status, f.reason);
  };

  // Limits count the body as it streams; their failure is told apart from the upstream's.
  let refused: BodyLimitError | undefined;
  const streamed = hasBody ? guardRequestBody(requestBodyFor(route.chain, req), req) : null;
  if (streamed !== null && streamed !== req) {
    streamed.once('error', (err) => {
      if (err instanceof BodyLimitError) refused = err;
      current?.abort(err);
    });
  }

  const health = balancer.state;
  const tries = new RequestTries(balancer, retry, input, deps.metrics, () => aborted !== undefined);

  const start = (body: Buffer | Readable | null): void => {
    if (plan.mirrors.length > 0) sendMirrors(plan, upstreams, input, {
      method: ctx.method,
      path: target.pathAndQuery,
      headers,
      body: Buffer.isBuffer(body) ? body : null,
      bodyStreamed: body !== null && !Buffer.isBuffer(body),
      connectTimeoutMs: route.timeouts.connectMs,
      responseTimeoutMs: route.timeouts.responseMs,
    }, deps.pools, deps.metrics);
    attempt(first, false, body);
  };

  const retryLater = (body: Buffer | Readable | null): void => tries.retryLater((next) => {
    if (typeof next !== 'string') {
      attempt(next, true, body);
      return;
    }
    clearTimeout(timer);
    if (aborted === 'timeout') replyError(res, ctx, 504, 'request timeout');
    else if (next === 'none') replyError(res, ctx, 503, `no healthy endpoints left for a retry in cluster "${cluster}"`);
    else if (next === 'full') replyOverloaded(res, ctx, cluster, 'max_requests_per_endpoint', deps.metrics);
  });

  const attempt = (member: Member, isRetry: boolean, body: Buffer | Readable | null): void => {
    const { releaseRetrySlot, end: endTry } = tries.begin(member, isRetry);
    const upstream = member.endpoint.key;
    ctx.upstream = upstream;
    const ep = member.state;
    const pool = deps.pools.get(member.endpoint, route.timeouts.connectMs, balancer.protocol === 'https');
    let transforms: Transform[] | null = null;
    // Completion of a response that is being streamed to the client.
    const done = (err: Error | null): void => {
      clearTimeout(timer);
      endTry();
      if (!err) return;
      if (refused !== undefined) {
        ctx.error = refused.message;
        res.destroy();
        return;
      }
      if (aborted === 'client') ctx.error = 'client closed the connection';
      else if (aborted === 'timeout') ctx.error = 'request timeout';
      else upstreamError(err, upstream);
    };
    const failedBeforeHead = (err: Error): void => {
      endTry();
      if (refused !== undefined) {
        clearTimeout(timer);
        replyBodyRefused(req, res, ctx, refused.status, refused.message);
        return;
      }
      if (aborted === 'client') {
        clearTimeout(timer);
        ctx.status = 499;
        ctx.error = 'client closed the connection';
        return;
      }
      if (aborted === 'timeout') {
        replyError(res, ctx, 504, 'request timeout');
        return;
      }
      const code = (err as { code?: unknown } | null)?.code;
      if (code === UPSTREAM_CODES.invalidRequest) {
        clearTimeout(timer);
        replyError(res, ctx, 400, 'request cannot be forwarded');
        return;
      }
      if (code === UPSTREAM_CODES.poolClosed) {
        clearTimeout(timer);
        replyError(res, ctx, 503, 'upstream pool is shutting down');
        return;
      }
      const condition = errorCondition(err);
      if (condition === 'connect-failure' || condition === 'reset') deps.upstreamHealth?.record(health, ep, 'connect-failure');
      if (retry !== undefined && retry.on.has(condition) && tries.mayRetry()) {
        const f = classifyUpstreamError(err);
        deps.metrics.upstreamErrors.inc({ cluster, kind: f.kind });
        deps.log.debug({ err, requestId: ctx.requestId, upstream }, `${f.reason}; retrying`);
        retryLater(body);
        return;
      }
      clearTimeout(timer);
      upstreamError(err, upstream);
    };

    current = pool.exchange({
      method: req.method!,
      path: target.pathAndQuery,
      headers,
      fieldsChecked,
      body,
      headersTimeout: retry?.perTryTimeoutMs ?? route.timeouts.responseMs,
      bodyTimeout: route.timeouts.responseMs,
    }, {
      onHead: (head) => {
        const status = head.status;
        if (aborted !== undefined) {
          endTry();
          return null;
        }
        deps.upstreamHealth?.record(health, ep, status >= 500 ? '5xx' : 'success');
        if (retry !== undefined && statusRetryable(retry, status)) {
          releaseRetrySlot();
          if (tries.mayRetry()) {
            endTry();
            retryLater(body);
            return null;
          }
        }
        const edits = route.transforms.responseHeaders;
        const cookieAdded = needsAffinityCookie(plan, req, member);
        const checked = responseFieldsChecked(true, { edits, cookieAdded, responseHooks: route.chain.onResponse !== null });
        try {
          if (checked && head.fieldLines !== undefined && res instanceof H1Response) {
            // Nothing edits this head: its lines go on as they came, and the
            // header object is built only if something asks the response for it.
            const lines = clientResponseFieldLines(head.fieldLines, ctx.requestId);
            res.writeFieldLines(status, lines.text, lines.hasDate, head.contentLength, () => clientResponseHeaders(head.headers, ctx.requestId));
            return res;
          }
          const responseHeaders = clientResponseHeaders(head.headers, ctx.requestId, edits);
          if (cookieAdded) {
            const prior = responseHeaders['set-cookie'];
            const mine = affinityCookie(plan.affinity!, member, ctx.secure);
            responseHeaders['set-cookie'] = prior === undefined ? mine : [...(Array.isArray(prior) ? prior : [String(prior)]), mine];
          }
          // Response phase (compression): may edit the headers and add body transforms.
          transforms = runResponseHooks(route.chain, req, { status, headers: responseHeaders });
          // This exchange's head came from PyServe's HTTP/1.1 upstream parser.
          if (res instanceof H1Response && checked) {
            res.writeCheckedHead(status, responseHeaders);
          } else {
            res.writeHead(status, responseHeaders);
          }
        } catch (err) {
          // Node refuses a status or header value the parser let through.
          endTry();
          upstreamError(Object.assign(new Error('invalid upstream response head'), { cause: err, code: 'INVALID_RESPONSE_HEAD' }), upstream);
          return null;
        }
        if (transforms === null) return res;
        pipeline([...transforms, res] as [Transform, ...Transform[], ServerResponse], done);
        return transforms[0]!;
      },
      onEnd: () => {
        // With transforms, the pipeline reports completion once the client got everything.
        if (transforms === null) done(null);
      },
      onError: (err, phase) => {
        if (phase === 'body') {
          // An incomplete response: the client must see a broken connection, not a short body.
          if (transforms !== null) transforms[0]!.destroy(err);
          else res.destroy();
          done(err);
          return;
        }
        failedBeforeHead(err);
      },
    });

  };

  if (!keepBody) {
    start(streamed);
    return;
  }
  readWhole(streamed!, (err, buf) => {
    if (err === null) {
      start(buf!);
      return;
    }
    clearTimeout(timer);
    if (err instanceof BodyLimitError) replyBodyRefused(req, res, ctx, err.status, err.message);
    else if (aborted === 'timeout') replyError(res, ctx, 504, 'request timeout');
    else {
      ctx.status = 499;
      ctx.error = 'client closed the connection';
      res.destroy();
    }
  });
}
