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
import type { Readable, Transform, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { CompiledRoute, CompiledUpstreams, ForwardPlan } from '../config/compile.ts';
import type { DataplaneMetrics } from '../observability/metrics.ts';
import type { RequestContext } from '../server/context.ts';
import { clientResponseFieldLines, clientResponseHeaders, forwardedFieldLines, forwardedFieldsChecked, responseFieldsChecked, upstreamRequestHeaders } from '../server/headers.ts';
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
import type { Try, TriesOwner } from './tries.ts';
import type { CompiledRetry } from './retry.ts';
import type { UpstreamHealth } from './health-state.ts';
import type { Exchange, ExchangeCallbacks, ExchangeRequest } from './h1/connection.ts';
import type { ResponseHead } from './h1/response-parser.ts';
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

  const forwarding = new Forwarding(req, res, ctx, route, upstreams, balancer, first, target, deps, input);
  const admission = admit(balancer.state, balancer.circuitBreaker, startAdmitted, forwarding);
  if (admission.state === 'refused') {
    replyOverloaded(res, ctx, cluster, admission.limit, deps.metrics);
  } else if (admission.state === 'queued') {
    onResponseClose(res, admission.cancel);
  }
}

const NO_HEADERS: string[] = [];

// Module-level functions taking the request's object, not closures: a
// request without a body that is neither retried nor compressed makes none
// (docs/benchmarks.md item 22).
function startAdmitted(f: Forwarding): void {
  f.admitted();
}

function releaseAdmission(f: Forwarding): void {
  release(f.balancer.state, f.balancer.circuitBreaker);
}

function timedOut(f: Forwarding): void {
  f.abort('timeout', new Error('request timeout'));
}

function responseClosed(f: Forwarding): void {
  clearTimeout(f.timer);
  if (!f.res.writableFinished) f.abort('client', new Error('client closed the connection'));
}

/**
 * One request forwarded to a cluster: admitted, then handed to the HTTP/2
 * forwarder or tried over HTTP/1.1 here — its body, timeout, tries, and the
 * response streamed from the try that answered.
 */
class Forwarding implements TriesOwner {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly ctx: RequestContext;
  readonly route: ForwardRoute;
  readonly upstreams: CompiledUpstreams;
  readonly balancer: ClusterBalancer;
  readonly first: Member;
  readonly target: ForwardTarget;
  readonly deps: ProxyDeps;
  readonly input: PickInput;

  // Set once forwarding over HTTP/1.1 starts; `headers` is a shared empty list until then, not an array per request.
  headers: string[] = NO_HEADERS;
  fieldsChecked = false;
  /** The field block as text instead of `headers`, for the usual request (ExchangeRequest.fieldBlock). */
  fieldBlock: string | undefined;
  contentLength: string | undefined;
  retry: CompiledRetry | undefined;
  tries: RequestTries | undefined;
  /** The try in progress; aborting the request aborts it. */
  current: Exchange | undefined;
  aborted: 'client' | 'timeout' | undefined;
  timer: NodeJS.Timeout | undefined;
  /** A body limit's refusal, told apart from the upstream's failure. */
  refused: BodyLimitError | undefined;

  constructor(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, route: ForwardRoute, upstreams: CompiledUpstreams, balancer: ClusterBalancer, first: Member, target: ForwardTarget, deps: ProxyDeps, input: PickInput) {
    this.req = req;
    this.res = res;
    this.ctx = ctx;
    this.route = route;
    this.upstreams = upstreams;
    this.balancer = balancer;
    this.first = first;
    this.target = target;
    this.deps = deps;
    this.input = input;
  }

  get stopped(): boolean {
    return this.aborted !== undefined;
  }

  /** The cluster took the request. */
  admitted(): void {
    onResponseClose(this.res, releaseAdmission, this);
    const { deps } = this;
    if (isHttp2Protocol(this.balancer.protocol) && deps.h2 !== undefined) {
      forwardHttp2(this.req, this.res, this.ctx, this.route, this.balancer, this.first, this.target, { ...deps, h2: deps.h2 });
      return;
    }
    this.#forward();
  }

  abort(why: 'client' | 'timeout', err: Error): void {
    this.aborted ??= why;
    this.current?.abort(err);
  }

  #forward(): void {
    const { req, ctx, route } = this;
    const plan = route.action;
    const te = req.headers['transfer-encoding'];
    const cl = req.headers['content-length'];
    // An HTTP/2 client's body needs no length header; requestHasBody also looks at the stream.
    const hasBody = requestHasBody(req);
    const contentLength = hasBody && te === undefined ? cl : undefined;
    const host = this.target.host;
    const { host: upstreamHost, requestHeaders: edits } = route.transforms;
    const forwardLines = req instanceof H1Request ? req.forwardLines : undefined;
    if (forwardLines !== undefined && host !== undefined && forwardedFieldsChecked(true, { upstreamHost, edits }) && plan.mirrors.length === 0) {
      // The usual request: its head's lines as they came, and the proxy's own fields.
      this.fieldBlock = forwardedFieldLines(forwardLines, req.headers['x-forwarded-for'], {
        host,
        clientAddress: ctx.clientAddress,
        listenerPort: this.target.listenerPort,
        requestId: ctx.requestId,
        proto: ctx.secure ? 'https' : 'http',
      });
      this.contentLength = contentLength;
    } else {
      this.headers = upstreamRequestHeaders(req.rawHeaders, req.headers, {
        host,
        clientAddress: ctx.clientAddress,
        listenerPort: this.target.listenerPort,
        requestId: ctx.requestId,
        contentLength,
        proto: ctx.secure ? 'https' : 'http',
        upstreamHost,
        edits,
      });
      this.fieldsChecked = forwardedFieldsChecked(req instanceof H1Request, { upstreamHost, edits });
    }

    let retry = plan.retry !== undefined && methodRetryable(plan.retry, ctx.method) ? plan.retry : undefined;
    const keepBody = hasBody && (retry !== undefined || plan.mirrors.length > 0) && te === undefined && cl !== undefined && Number(cl) <= REPLAY_BODY_LIMIT;
    // A streamed body is read once: such a request is never retried.
    if (hasBody && !keepBody) retry = undefined;
    this.retry = retry;

    if (route.timeouts.requestMs > 0) this.timer = setTimeout(timedOut, route.timeouts.requestMs, this);
    onResponseClose(this.res, responseClosed, this);

    // Limits count the body as it streams; their failure is told apart from the upstream's.
    const streamed = hasBody ? guardRequestBody(requestBodyFor(route.chain, req), req) : null;
    if (streamed !== null && streamed !== req) {
      streamed.once('error', (err) => {
        if (err instanceof BodyLimitError) this.refused = err;
        this.current?.abort(err);
      });
    }
    this.tries = new RequestTries(this.balancer, retry, this.input, this.deps.metrics, this);

    if (!keepBody) {
      this.#send(streamed);
      return;
    }
    readWhole(streamed!, (err, buf) => {
      if (err === null) {
        this.#send(buf!);
        return;
      }
      clearTimeout(this.timer);
      if (err instanceof BodyLimitError) replyBodyRefused(req, this.res, ctx, err.status, err.message);
      else if (this.aborted === 'timeout') replyError(this.res, ctx, 504, 'request timeout');
      else {
        ctx.status = 499;
        ctx.error = 'client closed the connection';
        this.res.destroy();
      }
    });
  }

  #send(body: Buffer | Readable | null): void {
    const plan = this.route.action;
    if (plan.mirrors.length > 0) sendMirrors(plan, this.upstreams, this.input, {
      method: this.ctx.method,
      path: this.target.pathAndQuery,
      headers: this.headers,
      body: Buffer.isBuffer(body) ? body : null,
      bodyStreamed: body !== null && !Buffer.isBuffer(body),
      connectTimeoutMs: this.route.timeouts.connectMs,
      responseTimeoutMs: this.route.timeouts.responseMs,
    }, this.deps.pools, this.deps.metrics);
    this.attempt(this.first, false, body);
  }

  attempt(member: Member, isRetry: boolean, body: Buffer | Readable | null): void {
    const t = new ForwardTry(this, this.tries!.begin(member, isRetry), body);
    this.ctx.upstream = t.upstream;
    const pool = this.deps.pools.get(member.endpoint, this.route.timeouts.connectMs, this.balancer.protocol === 'https');
    this.current = pool.exchange(t, t);
  }

  retryLater(body: Buffer | Readable | null): void {
    this.tries!.retryLater((next) => {
      if (typeof next !== 'string') {
        this.attempt(next, true, body);
        return;
      }
      clearTimeout(this.timer);
      const { res, ctx } = this;
      const cluster = this.balancer.name;
      if (this.aborted === 'timeout') replyError(res, ctx, 504, 'request timeout');
      else if (next === 'none') replyError(res, ctx, 503, `no healthy endpoints left for a retry in cluster "${cluster}"`);
      else if (next === 'full') replyOverloaded(res, ctx, cluster, 'max_requests_per_endpoint', this.deps.metrics);
    });
  }

  upstreamError(err: unknown, upstream: string): void {
    const f = classifyUpstreamError(err);
    this.deps.metrics.upstreamErrors.inc({ cluster: this.balancer.name, kind: f.kind });
    this.deps.log.debug({ err, requestId: this.ctx.requestId, upstream }, f.reason);
    replyError(this.res, this.ctx, f.status, f.reason);
  }
}

/**
 * One try of a {@link Forwarding} on one endpoint: the request the pool
 * sends, and what happens with its answer — a retry, an error reply, or the
 * response streamed to the client.
 */
class ForwardTry implements ExchangeRequest, ExchangeCallbacks {
  readonly method: string;
  readonly path: string;
  readonly headers: readonly string[];
  readonly fieldsChecked: boolean;
  readonly fieldBlock: string | undefined;
  readonly contentLength: string | undefined;
  readonly body: Buffer | Readable | null;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;

  readonly #f: Forwarding;
  readonly #try: Try;
  readonly upstream: string;
  /** The response phase's body transforms (compression), when there are any. */
  #transforms: Transform[] | null = null;

  constructor(f: Forwarding, t: Try, body: Buffer | Readable | null) {
    this.#f = f;
    this.#try = t;
    this.upstream = t.member.endpoint.key;
    this.method = f.req.method!;
    this.path = f.target.pathAndQuery;
    this.headers = f.headers;
    this.fieldsChecked = f.fieldsChecked;
    this.fieldBlock = f.fieldBlock;
    this.contentLength = f.contentLength;
    this.body = body;
    this.headersTimeout = f.retry?.perTryTimeoutMs ?? f.route.timeouts.responseMs;
    this.bodyTimeout = f.route.timeouts.responseMs;
  }

  onHead(head: ResponseHead): Writable | null {
    const f = this.#f;
    const { req, res, ctx, route } = f;
    const status = head.status;
    if (f.aborted !== undefined) {
      this.#try.end();
      return null;
    }
    const member = this.#try.member;
    f.deps.upstreamHealth?.record(f.balancer.state, member.state, status >= 500 ? '5xx' : 'success');
    const retry = f.retry;
    if (retry !== undefined && statusRetryable(retry, status)) {
      this.#try.releaseRetrySlot();
      if (f.tries!.mayRetry()) {
        this.#try.end();
        f.retryLater(this.body);
        return null;
      }
    }
    const plan = route.action;
    const edits = route.transforms.responseHeaders;
    const cookieAdded = needsAffinityCookie(plan, req, member);
    const checked = responseFieldsChecked(true, { edits, cookieAdded, responseHooks: route.chain.onResponse !== null });
    let transforms: Transform[] | null;
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
      this.#try.end();
      f.upstreamError(Object.assign(new Error('invalid upstream response head'), { cause: err, code: 'INVALID_RESPONSE_HEAD' }), this.upstream);
      return null;
    }
    if (transforms === null) return res;
    this.#transforms = transforms;
    pipeline([...transforms, res] as [Transform, ...Transform[], ServerResponse], (err) => this.#done(err));
    return transforms[0]!;
  }

  onEnd(): void {
    // With transforms, the pipeline reports completion once the client got everything.
    if (this.#transforms === null) this.#done(null);
  }

  onError(err: Error, phase: 'head' | 'body'): void {
    if (phase === 'head') {
      this.#failedBeforeHead(err);
      return;
    }
    // An incomplete response: the client must see a broken connection, not a short body.
    if (this.#transforms !== null) this.#transforms[0]!.destroy(err);
    else this.#f.res.destroy();
    this.#done(err);
  }

  /** Completion of a response that is being streamed to the client. */
  #done(err: Error | null): void {
    const f = this.#f;
    clearTimeout(f.timer);
    this.#try.end();
    if (!err) return;
    if (f.refused !== undefined) {
      f.ctx.error = f.refused.message;
      f.res.destroy();
      return;
    }
    if (f.aborted === 'client') f.ctx.error = 'client closed the connection';
    else if (f.aborted === 'timeout') f.ctx.error = 'request timeout';
    else f.upstreamError(err, this.upstream);
  }

  #failedBeforeHead(err: Error): void {
    const f = this.#f;
    const { res, ctx } = f;
    this.#try.end();
    if (f.refused !== undefined) {
      clearTimeout(f.timer);
      replyBodyRefused(f.req, res, ctx, f.refused.status, f.refused.message);
      return;
    }
    if (f.aborted === 'client') {
      clearTimeout(f.timer);
      ctx.status = 499;
      ctx.error = 'client closed the connection';
      return;
    }
    if (f.aborted === 'timeout') {
      replyError(res, ctx, 504, 'request timeout');
      return;
    }
    const code = (err as { code?: unknown } | null)?.code;
    if (code === UPSTREAM_CODES.invalidRequest) {
      clearTimeout(f.timer);
      replyError(res, ctx, 400, 'request cannot be forwarded');
      return;
    }
    if (code === UPSTREAM_CODES.poolClosed) {
      clearTimeout(f.timer);
      replyError(res, ctx, 503, 'upstream pool is shutting down');
      return;
    }
    const condition = errorCondition(err);
    if (condition === 'connect-failure' || condition === 'reset') f.deps.upstreamHealth?.record(f.balancer.state, this.#try.member.state, 'connect-failure');
    const retry = f.retry;
    if (retry !== undefined && retry.on.has(condition) && f.tries!.mayRetry()) {
      const c = classifyUpstreamError(err);
      f.deps.metrics.upstreamErrors.inc({ cluster: f.balancer.name, kind: c.kind });
      f.deps.log.debug({ err, requestId: ctx.requestId, upstream: this.upstream }, `${c.reason}; retrying`);
      f.retryLater(this.body);
      return;
    }
    clearTimeout(f.timer);
    f.upstreamError(err, this.upstream);
  }
}
