// Cluster-level policies (protocol, balancing, health, circuit breaking,
// ClusterIP endpoints). They belong to a Service port, but two Ingresses or
// Routes may ask different things of one port; so each distinct policy gets
// its own cluster, named after the port plus a digest of the policy, and no
// one's settings are silently overridden by someone else's. A port used
// without any policy keeps its plain `<ns>/<svc>/<port>` cluster.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { canonicalJson } from '../../dataplane/snapshot/hash.ts';
import type { CircuitBreaker, Cluster, ClusterProtocol, HealthCheck, LoadBalancer, OutlierDetection } from '../../dataplane/snapshot/schema.ts';
import type { ResolvedBackend } from './backends.ts';
import type { Service } from './types.ts';

/** What a source asks of the clusters it forwards to. Absent fields: the dataplane defaults. */
export interface ClusterPolicy {
  readonly protocol?: ClusterProtocol | undefined;
  readonly loadBalancer?: LoadBalancer | undefined;
  readonly healthCheck?: HealthCheck | undefined;
  readonly outlierDetection?: OutlierDetection | undefined;
  readonly panicThresholdPercent?: number | undefined;
  readonly circuitBreaker?: CircuitBreaker | undefined;
  readonly useClusterIP?: boolean | undefined;
}

/** The policy with defaults and empty parts left out, so equal intents give equal clusters. */
function effective(policy: ClusterPolicy): ClusterPolicy {
  const out: Record<string, unknown> = {};
  if (policy.protocol !== undefined && policy.protocol !== 'http') out.protocol = policy.protocol;
  if (policy.loadBalancer !== undefined && policy.loadBalancer.policy !== 'RoundRobin') out.loadBalancer = policy.loadBalancer;
  if (policy.healthCheck !== undefined) out.healthCheck = policy.healthCheck;
  if (policy.outlierDetection !== undefined) out.outlierDetection = policy.outlierDetection;
  if (policy.panicThresholdPercent !== undefined) out.panicThresholdPercent = policy.panicThresholdPercent;
  if (policy.circuitBreaker !== undefined && Object.keys(policy.circuitBreaker).length > 0) out.circuitBreaker = policy.circuitBreaker;
  if (policy.useClusterIP === true) out.useClusterIP = true;
  return out as ClusterPolicy;
}

/**
 * The cluster a backend gets under `policy`: the plain cluster when the
 * policy asks for nothing, else `<plain name>/<10 hex digits of the policy's
 * sha256>` with the policy's fields. Stable: the same policy always gives
 * the same name, whoever asks for it.
 */
export function clusterWithPolicy(base: Cluster, policy: ClusterPolicy): Cluster {
  const p = effective(policy);
  if (Object.keys(p).length === 0) return base;
  const digest = createHash('sha256').update(canonicalJson(p)).digest('hex').slice(0, 10);
  const { useClusterIP, ...fields } = p;
  return {
    ...base,
    name: `${base.name}/${digest}`,
    ...(base.service !== undefined && useClusterIP === true && { service: { ...base.service, useClusterIP: true } }),
    ...fields,
    protocol: fields.protocol ?? base.protocol,
  };
}

/** A resolved backend moved onto its policy's cluster. */
export function withPolicy(resolved: ResolvedBackend, policy: ClusterPolicy): ResolvedBackend {
  if (!resolved.ok) return resolved;
  const cluster = clusterWithPolicy(resolved.cluster, policy);
  if (cluster === resolved.cluster) return resolved;
  return { ok: true, cluster, action: { type: 'forward', backends: [{ cluster: cluster.name, weight: 1 }] } };
}

/** The Service's ClusterIP when it has a usable one (not headless, not ExternalName). */
export function serviceClusterIP(service: Service | undefined): string | undefined {
  const ip = service?.spec?.clusterIP;
  return typeof ip === 'string' && isIP(ip) !== 0 ? ip.toLowerCase() : undefined;
}
