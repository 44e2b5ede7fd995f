/**
 * Writes `status.loadBalancer` on the Ingresses PyServe serves, so tools like
 * external-dns and `kubectl get ingress` see the address.
 *
 * Only the leader calls this. An Ingress is written only when its status
 * differs, with the resourceVersion read, retrying on conflict with a fresh
 * read: another writer (an older controller during a rollout) must not be
 * overwritten blindly.
 */
import { NetworkingV1Api } from '@kubernetes/client-node';
import type { KubeConfig, V1Ingress, V1IngressLoadBalancerIngress, V1Service } from '@kubernetes/client-node';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { statusCode } from './leader.ts';

/** Load-balancer addresses from the publish Service, or from explicit addresses. */
export function publishAddresses(service: V1Service | undefined, explicit: readonly string[]): V1IngressLoadBalancerIngress[] {
  if (explicit.length) {
    return explicit.map((a) => (isIP(a) ? { ip: a } : { hostname: a }));
  }
  const lb = service?.status?.loadBalancer?.ingress ?? [];
  return lb.flatMap((i): V1IngressLoadBalancerIngress[] => (i.ip ? [{ ip: i.ip }] : i.hostname ? [{ hostname: i.hostname }] : []));
}

function sameAddresses(a: readonly V1IngressLoadBalancerIngress[] | undefined, b: readonly V1IngressLoadBalancerIngress[]): boolean {
  const norm = (l: readonly V1IngressLoadBalancerIngress[]) => l.map((i) => `${i.ip ?? ''}|${i.hostname ?? ''}`).sort().join(',');
  return norm(a ?? []) === norm(b);
}

export class IngressStatusWriter {
  readonly #api: NetworkingV1Api;
  readonly #log: Logger;

  constructor(kc: KubeConfig, log: Logger) {
    this.#api = kc.makeApiClient(NetworkingV1Api);
    this.#log = log;
  }

  /** Make each Ingress's status show `addresses`. Returns how many were written. */
  async sync(ingresses: readonly V1Ingress[], addresses: readonly V1IngressLoadBalancerIngress[]): Promise<number> {
    let written = 0;
    await Promise.all(ingresses.map(async (ing) => {
      if (sameAddresses(ing.status?.loadBalancer?.ingress, addresses)) return;
      if (await this.#write(ing, addresses)) written++;
    }));
    return written;
  }

  async #write(cached: V1Ingress, addresses: readonly V1IngressLoadBalancerIngress[]): Promise<boolean> {
    const name = cached.metadata?.name ?? '';
    const namespace = cached.metadata?.namespace ?? '';
    let current: V1Ingress = cached;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        if (attempt > 0) {
          current = await this.#api.readNamespacedIngressStatus({ name, namespace });
          if (sameAddresses(current.status?.loadBalancer?.ingress, addresses)) return false;
        }
        await this.#api.replaceNamespacedIngressStatus({
          name,
          namespace,
          body: { ...current, status: { ...current.status, loadBalancer: { ingress: [...addresses] } } },
        });
        return true;
      } catch (err) {
        const code = statusCode(err);
        if (code === 404) return false; // deleted meanwhile
        if (code !== 409) {
          this.#log.warn({ err: (err as Error).message, ingress: `${namespace}/${name}` }, 'could not write ingress status');
          return false;
        }
      }
    }
    this.#log.warn({ ingress: `${namespace}/${name}` }, 'gave up writing ingress status after repeated conflicts');
    return false;
  }
}
