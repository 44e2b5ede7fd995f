// Where a proxied request goes: the session-affinity cookie first, then the
// route's weighted clusters, then the cluster's policy. Shared by the HTTP
// proxy and the WebSocket proxy so both honour the same stickiness.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { CompiledUpstreams, ForwardPlan } from '../config/compile.ts';
import type { SessionAffinity } from '../snapshot/schema.ts';
import type { ClusterBalancer, Member, PickInput } from './cluster-balancer.ts';
import { requestCookie } from './cluster-balancer.ts';
import { endpointHasRoom } from './admission.ts';

/** Outcome of {@link chooseTarget}. */
export interface Target {
  /** Cluster picked by weight; undefined when every weight is 0. */
  readonly cluster: string | undefined;
  readonly balancer: ClusterBalancer | undefined;
  /** Undefined when no endpoint of any weighted cluster can take the request. */
  readonly member: Member | undefined;
  /** The member was skipped to another one because it is at `maxRequestsPerEndpoint`; when no other had room, `member` is undefined. */
  readonly full: boolean;
}

/** What the balancer may hash on, from a request. */
export function pickInputOf(req: { readonly url?: string; readonly headers: IncomingHttpHeaders }, clientAddress: string): PickInput {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return { headers: req.headers, clientAddress, rawQuery: q < 0 ? undefined : url.slice(q + 1), pathAndQuery: url };
}

/** Another candidate with room, fewest requests in flight first, when `member` is at its per-endpoint limit. */
export function withRoom(balancer: ClusterBalancer, member: Member, exclude?: ReadonlySet<string>): Member | undefined {
  const limits = balancer.circuitBreaker;
  if (endpointHasRoom(member.state, limits)) return member;
  let best: Member | undefined;
  for (const m of balancer.candidates()) {
    if (exclude?.has(m.endpoint.key) || !endpointHasRoom(m.state, limits)) continue;
    if (best === undefined || m.state.inFlight < best.state.inFlight) best = m;
  }
  return best;
}

/** Choose cluster and endpoint for a request on a forward route. */
export function chooseTarget(plan: ForwardPlan, upstreams: CompiledUpstreams, input: PickInput): Target {
  if (plan.affinity !== undefined) {
    const id = requestCookie(input.headers, plan.affinity.name);
    if (id !== undefined) {
      for (const name of plan.backends.items) {
        const balancer = upstreams.get(name);
        const m = balancer?.byAffinity(id);
        if (m !== undefined) return settle(name, balancer!, m);
      }
    }
  }
  const cluster = plan.backends.pick();
  if (cluster === undefined) return { cluster, balancer: undefined, member: undefined, full: false };
  const balancer = upstreams.get(cluster);
  const member = balancer?.pick(input);
  if (member !== undefined) return settle(cluster, balancer!, member);
  // Other weighted clusters stand in when this one has no endpoint at all.
  for (const other of plan.backends.items) {
    if (other === cluster) continue;
    const alt = upstreams.get(other);
    const m = alt?.pick(input);
    if (m !== undefined) return settle(other, alt!, m);
  }
  return { cluster, balancer, member: undefined, full: false };
}

function settle(cluster: string, balancer: ClusterBalancer, member: Member): Target {
  const roomy = withRoom(balancer, member);
  return { cluster, balancer, member: roomy, full: roomy !== member };
}

/** `Set-Cookie` value pinning a client to `member`. */
export function affinityCookie(cookie: SessionAffinity['cookie'], member: Member, secureRequest: boolean): string {
  let v = `${cookie.name}=${member.affinityId}; Path=${cookie.path ?? '/'}`;
  if (cookie.ttlSeconds !== undefined) v += `; Max-Age=${cookie.ttlSeconds}`;
  if (cookie.domain !== undefined) v += `; Domain=${cookie.domain}`;
  if (cookie.secure ?? secureRequest) v += '; Secure';
  if (cookie.httpOnly ?? true) v += '; HttpOnly';
  if (cookie.sameSite !== undefined) v += `; SameSite=${cookie.sameSite}`;
  return v;
}

/** Whether the response must (re)issue the affinity cookie: the request did not already name `member`. */
export function needsAffinityCookie(plan: ForwardPlan, req: Pick<IncomingMessage, 'headers'>, member: Member): boolean {
  return plan.affinity !== undefined && requestCookie(req.headers, plan.affinity.name) !== member.affinityId;
}
