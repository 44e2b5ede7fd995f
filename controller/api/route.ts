/**
 * The `Route` custom resource (`routes.pyserve.io`, v1alpha1): PyServe's own
 * routing API for what an Ingress cannot say — method, header and query
 * matches, weighted backends, timeouts. A clean subset of Gateway API's
 * HTTPRoute, so moving to HTTPRoute later is a rename, not a redesign.
 *
 * This zod schema is the single source of truth: crds/pyserve.io_routes.yaml
 * is generated from it (`npm run crds`), CEL rules included, and the
 * controller validates with it again before translating.
 */
import { z } from 'zod';

export const ROUTE_GROUP = 'pyserve.io';
export const ROUTE_VERSION = 'v1alpha1';
export const ROUTE_KIND = 'Route';
export const ROUTE_PLURAL = 'routes';

const cel = (rule: string, message: string, fieldPath?: string) => ({ rule, message, ...(fieldPath ? { fieldPath } : {}) });

/** Lower-case DNS name or single-label wildcard (`*.example.com`). */
const Hostname = z.string().min(1).max(253)
  .regex(/^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/)
  .describe('A lower-case DNS name, or a single-label wildcard such as *.example.com (matches a.example.com, not b.a.example.com).');

/** Go-style duration as Gateway API uses: `500ms`, `10s`, `1m`, `1h`. */
const Duration = z.string().max(16).regex(/^([0-9]{1,5}(h|m|s|ms)){1,4}$/)
  .describe('A duration such as 500ms, 10s, 1m or 1h30m.');

export const RoutePathMatch = z.strictObject({
  type: z.enum(['Exact', 'PathPrefix', 'RegularExpression']).default('PathPrefix')
    .describe('Exact: the whole path. PathPrefix: element-wise prefix (/foo matches /foo and /foo/bar, not /foobar). RegularExpression: ECMAScript regex anchored at the start.'),
  value: z.string().min(1).max(1024).default('/').describe('The path, or the pattern for RegularExpression.'),
}).describe('How the request path is matched.')
  .meta({ 'x-kubernetes-validations': [cel("self.type == 'RegularExpression' || self.value.startsWith('/')", 'path value must start with "/" unless type is RegularExpression')] });

export const RouteValueMatch = z.strictObject({
  name: z.string().min(1).max(256).describe('Header name (case-insensitive) or query parameter name (case-sensitive).'),
  type: z.enum(['Exact', 'RegularExpression']).default('Exact').describe('How value is compared.'),
  value: z.string().max(4096).describe('Value, or ECMAScript regex for RegularExpression.'),
});

export const RouteMatch = z.strictObject({
  path: RoutePathMatch.optional().describe('Path condition; default PathPrefix "/".'),
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']).optional().describe('HTTP method; absent means any.'),
  headers: z.array(RouteValueMatch).max(16).optional().describe('Header conditions, all of which must hold.'),
  queryParams: z.array(RouteValueMatch).max(16).optional().describe('Query parameter conditions, all of which must hold.'),
}).describe('Conditions that must all hold for a request to match.');

export const RouteBackend = z.strictObject({
  name: z.string().min(1).max(253).describe('Name of a Service in the Route\'s namespace.'),
  port: z.number().int().min(1).max(65535).describe('Service port number.'),
  weight: z.number().int().min(0).max(1_000_000).default(1).describe('Relative weight; 0 sends no traffic to this backend.'),
});

export const RouteTimeouts = z.strictObject({
  request: Duration.optional().describe('Whole request, from the first byte received to the last byte sent.'),
  backendRequest: Duration.optional().describe('Time to the backend\'s response headers, and between body chunks.'),
  connect: Duration.optional().describe('TCP connect to the backend.'),
});

export const RouteRule = z.strictObject({
  name: z.string().max(63).regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$/).optional().describe('Optional name for humans and tools; route names in metrics and logs use the rule index (stable across edits that do not reorder rules).'),
  matches: z.array(RouteMatch).max(16).optional().describe('Any one match selects this rule; default is PathPrefix "/".'),
  backends: z.array(RouteBackend).min(1).max(16).describe('Services that serve the matched requests, split by weight.'),
  timeouts: RouteTimeouts.optional(),
}).meta({ 'x-kubernetes-validations': [cel('self.backends.exists(b, b.weight > 0)', 'at least one backend needs a weight above 0')] });

export const RouteSpec = z.strictObject({
  ingressClassName: z.string().max(253).optional().describe('IngressClass of the PyServe install that serves this Route; absent means the default class.'),
  hostnames: z.array(Hostname).max(16).optional().describe('Hosts this Route serves; absent or empty means any host.'),
  rules: z.array(RouteRule).min(1).max(64).describe('Rules; among matching rules the most specific path wins (Exact, then longest prefix, then regex).'),
}).meta({
  'x-kubernetes-validations': [cel('!has(self.hostnames) || self.hostnames.all(h, self.hostnames.exists_one(x, x == h))', 'hostnames must be unique', '.hostnames')],
});

const Condition = z.strictObject({
  type: z.string().max(316),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.number().int().min(0).optional(),
  lastTransitionTime: z.string(),
  reason: z.string().max(1024),
  message: z.string().max(32768),
});

export const RouteStatus = z.strictObject({
  observedGeneration: z.number().int().min(0).optional().describe('metadata.generation the conditions describe.'),
  conditions: z.array(Condition).max(8).optional().describe('Accepted, ResolvedRefs and Programmed.'),
});

export type RouteSpec = z.infer<typeof RouteSpec>;
export type RouteStatus = z.infer<typeof RouteStatus>;
export type RouteRule = z.infer<typeof RouteRule>;

/** A Route as read from the API server. */
export interface RouteObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; generation?: number; uid?: string; resourceVersion?: string; creationTimestamp?: string | Date };
  spec?: unknown;
  status?: RouteStatus;
}
