// ingress-nginx `server-alias`: more hostnames for the virtual host of the
// Ingress's host, sharing its routes (nginx adds them to the server's
// `server_name`). A name that already is a host, or an older Ingress's
// alias, is not taken over: ingress-nginx ignores such an alias too.
import type { Routing, VirtualHost } from '../../../dataplane/snapshot/schema.ts';
import type { FailureList } from '../failures.ts';
import { ingressRef } from '../failures.ts';
import { CATCH_ALL_HOST } from '../hosts.ts';
import type { OwnedIngress } from '../owned.ts';
import type { IngressAnnotations } from './ingress.ts';

/** Add each Ingress's aliases (Ingresses oldest first) to the virtual host of its first host. */
export function applyServerAliases(
  routing: Omit<Routing, 'hash'>,
  ingresses: readonly { readonly owned: OwnedIngress; readonly ann: IngressAnnotations }[],
  failures: FailureList,
): Omit<Routing, 'hash'> {
  const holders = new Map<string, string>();
  for (const vh of routing.virtualHosts) for (const h of vh.hostnames) holders.set(h, 'a host with routes of its own');
  const added = new Map<string, string[]>();
  for (const { owned, ann } of ingresses) {
    if (ann.aliases.length === 0) continue;
    const target = owned.hosts.find((h) => h !== CATCH_ALL_HOST && routing.virtualHosts.some((vh) => vh.name === h));
    if (target === undefined) {
      ann.reader.ignored('server-alias', 'the Ingress has no named host with routes to add aliases to');
      continue;
    }
    for (const alias of ann.aliases) {
      const holder = holders.get(alias);
      if (holder !== undefined) {
        failures.add(ingressRef(owned.key), ann.reader.field('server-alias'), 'HostConflict', `alias ${JSON.stringify(alias)} is already ${holder}; it is not added to ${JSON.stringify(target)}`);
        continue;
      }
      holders.set(alias, `an alias of ${JSON.stringify(target)} (Ingress ${owned.key.namespace}/${owned.key.name})`);
      const list = added.get(target);
      if (list) list.push(alias);
      else added.set(target, [alias]);
    }
  }
  if (added.size === 0) return routing;
  const virtualHosts = routing.virtualHosts.map((vh): VirtualHost => {
    const aliases = added.get(vh.name);
    return aliases === undefined ? vh : { ...vh, hostnames: [...vh.hostnames, ...aliases] };
  });
  return { ...routing, virtualHosts };
}
