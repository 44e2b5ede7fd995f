// The tries of one request to an HTTP/2 upstream cluster (h2c, h2, grpc,
// grpcs), around h2-proxy.ts's single exchange: per-endpoint load, outlier
// detection, affinity cookie, and the route's retries with the same rules as
// towards HTTP/1.1 (proxy.ts): conditions, per-try timeout, idempotent
// methods unless allowed, backoff, and the cluster's retry budget. Only
// requests without a body are retried: a streamed HTTP/2 body is read once.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestContext } from '../server/context.ts';
import { replyError } from '../server/local-reply.ts';
import { replyOverloaded } from './admission.ts';
import type { ClusterBalancer, Member } from './cluster-balancer.ts';
import { affinityCookie, needsAffinityCookie, pickInputOf } from './choose.ts';
import { proxyHttp2, requestHasBody } from './h2-proxy.ts';
import type { H2ProxyDeps } from './h2-proxy.ts';
import type { ForwardRoute, ForwardTarget } from './proxy.ts';
import { methodRetryable, statusRetryable } from './retry.ts';
import { RequestTries } from './tries.ts';

/** Forward `req` to an HTTP/2 cluster, starting with `first`. */
export function forwardHttp2(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RequestContext,
  route: ForwardRoute,
  balancer: ClusterBalancer,
  first: Member,
  target: ForwardTarget,
  deps: H2ProxyDeps,
): void {
  const plan = route.action;
  const cluster = balancer.name;
  const health = balancer.state;
  const retry = plan.retry !== undefined && methodRetryable(plan.retry, ctx.method) && !requestHasBody(req) ? plan.retry : undefined;
  const owner = { stopped: false };
  res.once('close', () => (owner.stopped = true));
  // The whole-request timeout is proxyHttp2's; between tries only a client that left stops them.
  const tries = new RequestTries(balancer, retry, pickInputOf(req, ctx.clientAddress), deps.metrics, owner);

  const retryLater = (): void => tries.retryLater((next) => {
    if (next === 'none') replyError(res, ctx, 503, `no healthy endpoints left for a retry in cluster "${cluster}"`);
    else if (next === 'full') replyOverloaded(res, ctx, cluster, 'max_requests_per_endpoint', deps.metrics);
    else if (next !== 'stopped') attempt(next, true);
  });

  const attempt = (member: Member, isRetry: boolean): void => {
    const thisTry = tries.begin(member, isRetry);
    const endTry = (): void => thisTry.end();
    ctx.upstream = member.endpoint.key;
    const ep = member.state;
    res.once('close', endTry);
    // The cookie names the endpoint that answers: a retry replaces its predecessor's.
    if (isRetry) res.removeHeader('set-cookie');
    if (needsAffinityCookie(plan, req, member)) res.appendHeader('set-cookie', affinityCookie(plan.affinity!, member, ctx.secure));
    proxyHttp2(req, res, ctx, route, cluster, member.endpoint, balancer.protocol, target, {
      ...deps,
      onOutcome: (o) => deps.upstreamHealth?.record(health, ep, o),
      headTimeoutMs: retry?.perTryTimeoutMs,
      retryBeforeResponse: retry === undefined ? undefined : (why) => {
        thisTry.releaseRetrySlot();
        const retryable = 'status' in why ? statusRetryable(retry, why.status) : retry.on.has(why.condition);
        if (!retryable || !tries.mayRetry()) return false;
        res.off('close', endTry);
        endTry();
        retryLater();
        return true;
      },
    });
  };

  attempt(first, false);
}
