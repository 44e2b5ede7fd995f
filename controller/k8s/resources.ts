/**
 * The resource types the controller watches, and how to list each one.
 * Only what translation uses: Secrets are limited to TLS ones by a field
 * selector, so PyServe never caches other credentials of the cluster.
 */
import { CoreV1Api, CustomObjectsApi, DiscoveryV1Api, NetworkingV1Api } from '@kubernetes/client-node';
import type {
  KubeConfig, KubernetesListObject, KubernetesObject, V1EndpointSlice, V1Ingress, V1IngressClass, V1Secret, V1Service,
} from '@kubernetes/client-node';
import type { ResourceSpec } from './watcher.ts';
import { ROUTE_GROUP, ROUTE_PLURAL, ROUTE_VERSION } from '../api/route.ts';
import type { RouteObject } from '../api/route.ts';

const nsPath = (prefix: string, plural: string) => (ns: string | undefined) =>
  ns ? `${prefix}/namespaces/${ns}/${plural}` : `${prefix}/${plural}`;

/** Specs for every watched type, bound to one KubeConfig. */
export function resourceSpecs(kc: KubeConfig) {
  const core = kc.makeApiClient(CoreV1Api);
  const net = kc.makeApiClient(NetworkingV1Api);
  const disc = kc.makeApiClient(DiscoveryV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const crd = { group: ROUTE_GROUP, version: ROUTE_VERSION, plural: ROUTE_PLURAL };
  const tls = 'type=kubernetes.io/tls';
  return {
    ingresses: {
      kind: 'Ingress',
      path: nsPath('/apis/networking.k8s.io/v1', 'ingresses'),
      list: (ns) => ns ? net.listNamespacedIngress({ namespace: ns }) : net.listIngressForAllNamespaces(),
    } satisfies ResourceSpec<V1Ingress>,
    ingressClasses: {
      kind: 'IngressClass',
      // Cluster-scoped: the namespace list never applies.
      path: () => '/apis/networking.k8s.io/v1/ingressclasses',
      list: () => net.listIngressClass(),
    } satisfies ResourceSpec<V1IngressClass>,
    services: {
      kind: 'Service',
      path: nsPath('/api/v1', 'services'),
      list: (ns) => ns ? core.listNamespacedService({ namespace: ns }) : core.listServiceForAllNamespaces(),
    } satisfies ResourceSpec<V1Service>,
    endpointSlices: {
      kind: 'EndpointSlice',
      path: nsPath('/apis/discovery.k8s.io/v1', 'endpointslices'),
      list: (ns) => ns ? disc.listNamespacedEndpointSlice({ namespace: ns }) : disc.listEndpointSliceForAllNamespaces(),
    } satisfies ResourceSpec<V1EndpointSlice>,
    secrets: {
      kind: 'Secret',
      path: nsPath('/api/v1', 'secrets'),
      fieldSelector: tls,
      list: (ns) => ns
        ? core.listNamespacedSecret({ namespace: ns, fieldSelector: tls })
        : core.listSecretForAllNamespaces({ fieldSelector: tls }),
    } satisfies ResourceSpec<V1Secret>,
    routes: {
      kind: 'Route',
      path: nsPath(`/apis/${ROUTE_GROUP}/${ROUTE_VERSION}`, ROUTE_PLURAL),
      list: async (ns) => (ns
        ? await custom.listNamespacedCustomObject({ ...crd, namespace: ns })
        : await custom.listClusterCustomObject(crd)) as KubernetesListObject<RouteObject & KubernetesObject>,
      notFoundIsEmpty: true,
    } satisfies ResourceSpec<RouteObject & KubernetesObject>,
  };
}
