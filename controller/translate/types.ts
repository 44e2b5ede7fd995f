/**
 * Input and output types of the translator.
 *
 * The Kubernetes types here are minimal structural views of the fields the
 * translator reads. They are deliberately loose (every field optional, `null`
 * allowed) so that both YAML/JSON-parsed objects and `@kubernetes/client-node`
 * model instances (whose timestamps are `Date`s) are assignable to them.
 */
import type { Snapshot } from '../../dataplane/snapshot/schema.ts';

/** Object metadata: the subset the translator reads. */
export interface ObjectMeta {
  readonly name?: string | null;
  /** Absent means `default`, as with kubectl. */
  readonly namespace?: string | null;
  /** ISO 8601 string when parsed from YAML/JSON, `Date` from `@kubernetes/client-node`. */
  readonly creationTimestamp?: string | Date | null;
  readonly annotations?: Readonly<Record<string, string>> | null;
  readonly labels?: Readonly<Record<string, string>> | null;
  /** Incremented by the API server on every spec change; Route statuses echo it. */
  readonly generation?: number | null;
}

/** `networking.k8s.io/v1` ServiceBackendPort: exactly one of `name` or `number`. */
export interface ServiceBackendPort {
  readonly name?: string | null;
  readonly number?: number | null;
}

/** `networking.k8s.io/v1` IngressServiceBackend. */
export interface IngressServiceBackend {
  readonly name?: string | null;
  readonly port?: ServiceBackendPort | null;
}

/** A reference to a non-Service backend (unsupported, reported as a failure). */
export interface TypedLocalObjectReference {
  readonly apiGroup?: string | null;
  readonly kind?: string | null;
  readonly name?: string | null;
}

/** `networking.k8s.io/v1` IngressBackend: a Service or a resource. */
export interface IngressBackend {
  readonly service?: IngressServiceBackend | null;
  readonly resource?: TypedLocalObjectReference | null;
}

/** One path of an Ingress rule. */
export interface HTTPIngressPath {
  readonly path?: string | null;
  /** `Exact`, `Prefix` or `ImplementationSpecific`; absent is read as `ImplementationSpecific`. */
  readonly pathType?: string | null;
  readonly backend?: IngressBackend | null;
}

/** One rule of an Ingress: an optional host and its paths. */
export interface IngressRule {
  /** Absent or empty means every host. */
  readonly host?: string | null;
  readonly http?: { readonly paths?: readonly HTTPIngressPath[] | null } | null;
}

/** `networking.k8s.io/v1` IngressSpec (TLS is not translated yet). */
export interface IngressSpec {
  readonly ingressClassName?: string | null;
  readonly defaultBackend?: IngressBackend | null;
  readonly rules?: readonly IngressRule[] | null;
  readonly tls?: readonly IngressTLS[] | null;
}

/** `networking.k8s.io/v1` Ingress. */
export interface Ingress {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: ObjectMeta | null;
  readonly spec?: IngressSpec | null;
}

/** `networking.k8s.io/v1` IngressClass. */
export interface IngressClass {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: ObjectMeta | null;
  readonly spec?: { readonly controller?: string | null } | null;
}

/** One port of a Service. */
export interface ServicePort {
  /** Required when a Service has several ports; matched against EndpointSlice port names. */
  readonly name?: string | null;
  readonly port?: number | null;
  readonly protocol?: string | null;
}

/** `v1` Service. */
export interface Service {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: ObjectMeta | null;
  readonly spec?: {
    readonly type?: string | null;
    readonly ports?: readonly ServicePort[] | null;
    /** The virtual IP; `None` for a headless Service. Read for ingress-nginx `service-upstream`. */
    readonly clusterIP?: string | null;
  } | null;
}

/** Conditions of one EndpointSlice endpoint; absent fields take the API defaults. */
export interface EndpointConditions {
  readonly ready?: boolean | null;
  readonly serving?: boolean | null;
  readonly terminating?: boolean | null;
}

/** One endpoint of an EndpointSlice. */
export interface SliceEndpoint {
  /** Fungible addresses of one backend; only the first is used, as kube-proxy does. */
  readonly addresses?: readonly string[] | null;
  readonly conditions?: EndpointConditions | null;
}

/** One port of an EndpointSlice. */
export interface SlicePort {
  /** Equals the Service port name; empty or absent for an unnamed Service port. */
  readonly name?: string | null;
  readonly port?: number | null;
  readonly protocol?: string | null;
}

/** `discovery.k8s.io/v1` EndpointSlice. */
export interface EndpointSlice {
  readonly apiVersion?: string;
  readonly kind?: string;
  /** Must carry the `kubernetes.io/service-name` label to be used. */
  readonly metadata?: ObjectMeta | null;
  /** `IPv4`, `IPv6` or `FQDN` (FQDN slices are skipped). */
  readonly addressType?: string | null;
  readonly endpoints?: readonly SliceEndpoint[] | null;
  readonly ports?: readonly SlicePort[] | null;
}

/** One `spec.tls` entry of an Ingress: hosts served with the certificate of a Secret in the Ingress's namespace. */
export interface IngressTLS {
  readonly hosts?: readonly string[] | null;
  readonly secretName?: string | null;
}

/** A Secret; only `kubernetes.io/tls`-shaped data (`tls.crt`, `tls.key`, base64) is read. */
export interface Secret {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: ObjectMeta | null;
  readonly type?: string | null;
  readonly data?: Readonly<Record<string, string>> | null;
}

/**
 * `pyserve.io/v1alpha1` Route, as read from the API server or a manifest.
 * `spec` stays `unknown`: the translator validates it with `RouteSpec` from
 * controller/api/route.ts rather than trusting it. `RouteObject` from that
 * module is assignable to this type.
 */
export interface RouteObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: ObjectMeta | null;
  readonly spec?: unknown;
}

/** Everything the translator reads: plain Kubernetes objects, in any order. */
export interface ClusterState {
  readonly ingresses: readonly Ingress[];
  readonly ingressClasses: readonly IngressClass[];
  readonly services: readonly Service[];
  readonly endpointSlices: readonly EndpointSlice[];
  /** `pyserve.io` Routes; absent means none. */
  readonly routes?: readonly RouteObject[];
  /** Secrets referenced by Ingress `spec.tls`; absent means none (every TLS host gets the default certificate). */
  readonly secrets?: readonly Secret[];
}

/** A Service and port used as a backend; a string port is a Service port name. */
export interface BackendRef {
  readonly namespace: string;
  readonly name: string;
  /** Service port number, or Service port name (a string of digits counts as a number). */
  readonly port: number | string;
}

/** Controller settings that shape translation. */
export interface TranslateOptions {
  /** IngressClass `spec.controller` value PyServe answers to. Default {@link DEFAULT_CONTROLLER_NAME}. */
  readonly controllerName?: string;
  /**
   * Only this IngressClass name is ours (several PyServe installs can share a
   * controller name). It is also ours when no IngressClass object of that
   * name exists, which lets local mode and the legacy annotation work without one.
   */
  readonly ingressClassName?: string;
  /** Controller-wide default backend for requests no Ingress route matches. */
  readonly defaultBackend?: BackendRef;
  /** Treat Ingresses without any class as ours. */
  readonly watchIngressWithoutClass?: boolean;
  /** Stamped into the snapshot; the caller makes it monotonic. */
  readonly generation: number;
}

/** Default IngressClass controller name. */
export const DEFAULT_CONTROLLER_NAME = 'pyserve.io/ingress-controller';

/** Identifies a Kubernetes object in statuses and failures. */
export interface ObjectRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

/** Every reason a {@link ResourceFailure} can carry; documented in docs/translation.md. */
export const FAILURE_REASONS = [
  'AllWeightsZero',
  'CanaryWithoutMain',
  'DefaultBackendConflict',
  'DuplicateObject',
  'EmptyIngress',
  'HostConflict',
  'IgnoredAnnotation',
  'InvalidAnnotation',
  'InvalidBackend',
  'InvalidFilter',
  'InvalidHost',
  'InvalidPath',
  'InvalidPathType',
  'InvalidPolicy',
  'InvalidRegex',
  'InvalidRouteSpec',
  'InvalidTLSSecret',
  'InvalidTimeout',
  'PathConflict',
  'ServiceNotFound',
  'ServicePortNotFound',
  'TLSSecretNotFound',
  'UnsupportedAnnotation',
  'UnsupportedBackend',
  'UnsupportedServiceType',
] as const;

/** Machine-readable failure reason. */
export type FailureReason = (typeof FAILURE_REASONS)[number];

/**
 * A problem with one part of one object. It fails only what it names: the
 * rest of the object and every other object keep being served.
 */
export interface ResourceFailure {
  /** The object at fault. For the controller's own default backend: the Service it names. */
  readonly object: ObjectRef;
  /**
   * Field path inside the object, e.g. `spec.rules[0].http.paths[1].backend.service.port.name`.
   * Problems with controller options start with `options.`.
   */
  readonly field: string;
  readonly reason: FailureReason;
  /** One human-readable sentence. */
  readonly message: string;
}

/** Summary reason of an {@link IngressStatus}. */
export type IngressStatusReason = 'Accepted' | 'PartiallyAccepted' | 'Rejected';

/** Outcome of translation for one Ingress this controller owns. */
export interface IngressStatus {
  readonly kind: 'Ingress';
  readonly namespace: string;
  readonly name: string;
  /** False only when the Ingress has failures and contributed no route at all. */
  readonly accepted: boolean;
  /** `Accepted` (no failures), `PartiallyAccepted` (some failures), `Rejected` (nothing programmed). */
  readonly reason: IngressStatusReason;
  readonly message: string;
}

/** Reasons of a Route's `Accepted` condition. */
export const ROUTE_ACCEPTED_REASONS = ['Accepted', 'InvalidRouteSpec', 'NoRoutes'] as const;
export type RouteAcceptedReason = (typeof ROUTE_ACCEPTED_REASONS)[number];

/** Reasons of a Route's `ResolvedRefs` condition. */
export const ROUTE_RESOLVED_REFS_REASONS = ['ResolvedRefs', 'BackendNotFound', 'UnsupportedBackend', 'InvalidRouteSpec'] as const;
export type RouteResolvedRefsReason = (typeof ROUTE_RESOLVED_REFS_REASONS)[number];

/** Status of a Kubernetes condition. */
export type ConditionStatus = 'True' | 'False' | 'Unknown';

/**
 * Whether the Route's spec is valid and at least one of its routes is in
 * the snapshot. `True` even when some matches or backends failed: those are
 * listed in the message (and in `failures`).
 */
export interface RouteAcceptedCondition {
  readonly type: 'Accepted';
  readonly status: 'True' | 'False';
  readonly reason: RouteAcceptedReason;
  readonly message: string;
}

/**
 * Whether every backend reference resolves to a usable Service port.
 * `Unknown` (reason `InvalidRouteSpec`) when the spec is invalid, since
 * nothing was resolved.
 */
export interface RouteResolvedRefsCondition {
  readonly type: 'ResolvedRefs';
  readonly status: ConditionStatus;
  readonly reason: RouteResolvedRefsReason;
  readonly message: string;
}

/**
 * Outcome of translation for one Route this controller owns. `Programmed`
 * is not here: only the controller knows when dataplanes applied the snapshot.
 */
export interface RouteStatusResult {
  readonly namespace: string;
  readonly name: string;
  /** `metadata.generation` the conditions describe (0 when absent). */
  readonly generation: number;
  readonly conditions: readonly [RouteAcceptedCondition, RouteResolvedRefsCondition];
}

/** Output of {@link translate}. */
export interface TranslateResult {
  /** Always passes `validateSnapshot`. */
  readonly snapshot: Snapshot;
  /** One per owned Ingress, sorted by namespace then name. */
  readonly statuses: readonly IngressStatus[];
  /** One per owned Route, sorted by namespace then name. */
  readonly routeStatuses: readonly RouteStatusResult[];
  /** Sorted by object, field, reason, message. */
  readonly failures: readonly ResourceFailure[];
}
