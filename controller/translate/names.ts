// Stable names. Route names are metric and log labels and cluster names key
// upstream pools that survive snapshot swaps, so neither may depend on
// anything but the source object's identity and position.

/** `ingress/<ns>/<name>/rule/<i>/path/<j>` */
export function ingressPathRouteName(namespace: string, name: string, rule: number, path: number): string {
  return `ingress/${namespace}/${name}/rule/${rule}/path/${path}`;
}

/** `ingress/<ns>/<name>/default-backend` */
export function ingressDefaultBackendRouteName(namespace: string, name: string): string {
  return `ingress/${namespace}/${name}/default-backend`;
}

/** `ingress/<ns>/<name>/app-root`: the redirect of `/` an `app-root` annotation asks for. */
export function ingressAppRootRouteName(namespace: string, name: string): string {
  return `ingress/${namespace}/${name}/app-root`;
}

/**
 * `ingress/<ns>/<name>/rule/<i>/path/<j>/<kind>`: a header or cookie route
 * that path of a canary Ingress adds to the main Ingress's path
 * (`kind`: `header`, `header-never`, `cookie`, `cookie-never`).
 */
export function canaryRouteName(namespace: string, name: string, rule: number, path: number, kind: string): string {
  return `${ingressPathRouteName(namespace, name, rule, path)}/${kind}`;
}

/** `route/<ns>/<name>/rule/<i>/match/<j>`; a rule without matches has the one match 0. */
export function routeMatchRouteName(namespace: string, name: string, rule: number, match: number): string {
  return `route/${namespace}/${name}/rule/${rule}/match/${match}`;
}

/** Route of the controller-wide default backend. */
export const CONTROLLER_DEFAULT_BACKEND_ROUTE = 'default-backend';

/** `<ns>/<service>/<port number>` */
export function clusterName(namespace: string, service: string, port: number): string {
  return `${namespace}/${service}/${port}`;
}
