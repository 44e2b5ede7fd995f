/**
 * Status conditions on Route objects: `Accepted`, `ResolvedRefs` and
 * `Programmed`, each with `observedGeneration` and a machine-readable reason,
 * as Gateway API does. `Programmed` turns True only once every dataplane
 * target applied a snapshot containing the Route's current generation.
 *
 * Only the leader writes, only when something other than timestamps changed,
 * with optimistic concurrency and a fresh read on conflict.
 */
import { CustomObjectsApi } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ROUTE_GROUP, ROUTE_PLURAL, ROUTE_VERSION } from '../api/route.ts';
import type { RouteObject, RouteStatus } from '../api/route.ts';
import { statusCode } from './leader.ts';

/** One condition as the controller wants it (timestamps are added here). */
export interface DesiredCondition {
  type: 'Accepted' | 'ResolvedRefs' | 'Programmed';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

type Condition = NonNullable<RouteStatus['conditions']>[number];

/**
 * Merge desired conditions into existing ones, keeping `lastTransitionTime`
 * when the status did not flip (so repeated builds do not churn writes).
 */
export function mergeConditions(existing: readonly Condition[] | undefined, desired: readonly DesiredCondition[], generation: number, now: Date): Condition[] {
  return desired.map((d) => {
    const old = existing?.find((c) => c.type === d.type);
    return {
      type: d.type,
      status: d.status,
      observedGeneration: generation,
      lastTransitionTime: old && old.status === d.status ? old.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      reason: d.reason,
      message: d.message.slice(0, 32768),
    };
  });
}

function sameStatus(a: RouteStatus | undefined, b: RouteStatus): boolean {
  const strip = (s: RouteStatus | undefined) => JSON.stringify({
    g: s?.observedGeneration,
    c: (s?.conditions ?? []).map((c) => [c.type, c.status, c.reason, c.message, c.observedGeneration, c.lastTransitionTime]),
  });
  return strip(a) === strip(b);
}

export class RouteStatusWriter {
  readonly #api: CustomObjectsApi;
  readonly #log: Logger;

  constructor(kc: KubeConfig, log: Logger) {
    this.#api = kc.makeApiClient(CustomObjectsApi);
    this.#log = log;
  }

  /** Write `desired` on the Route if it differs; returns true when written. */
  async write(cached: RouteObject, desired: readonly DesiredCondition[], now = new Date()): Promise<boolean> {
    const name = cached.metadata?.name ?? '';
    const namespace = cached.metadata?.namespace ?? '';
    let current: RouteObject = cached;
    for (let attempt = 0; attempt < 5; attempt++) {
      const generation = current.metadata?.generation ?? 0;
      const status: RouteStatus = { observedGeneration: generation, conditions: mergeConditions(current.status?.conditions, desired, generation, now) };
      if (sameStatus(current.status, status)) return false;
      try {
        await this.#api.replaceNamespacedCustomObjectStatus({
          group: ROUTE_GROUP, version: ROUTE_VERSION, plural: ROUTE_PLURAL, namespace, name,
          body: { ...current, status },
        });
        return true;
      } catch (err) {
        const code = statusCode(err);
        if (code === 404) return false;
        if (code !== 409) {
          this.#log.warn({ err: (err as Error).message, route: `${namespace}/${name}` }, 'could not write route status');
          return false;
        }
        try {
          current = (await this.#api.getNamespacedCustomObjectStatus({ group: ROUTE_GROUP, version: ROUTE_VERSION, plural: ROUTE_PLURAL, namespace, name })) as RouteObject;
        } catch {
          return false; // deleted meanwhile, or the API is away: the next build retries
        }
      }
    }
    this.#log.warn({ route: `${namespace}/${name}` }, 'gave up writing route status after repeated conflicts');
    return false;
  }
}
