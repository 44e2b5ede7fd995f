/**
 * zod schema → CustomResourceDefinition. Kubernetes wants a *structural*
 * OpenAPI v3 schema, so the JSON Schema zod emits is adjusted: no
 * `additionalProperties: false` next to `properties` (the API server prunes
 * unknown fields instead, and kubectl's strict field validation reports them),
 * no JavaScript safe-integer bounds, no `$schema`.
 */
import { z } from 'zod';
import { stringify } from 'yaml';
import { ROUTE_GROUP, ROUTE_KIND, ROUTE_PLURAL, ROUTE_VERSION, RouteSpec, RouteStatus } from './route.ts';

type Json = Record<string, unknown>;

function structural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(structural);
  if (!node || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node as Json)) {
    if (k === '$schema') continue;
    if (k === 'additionalProperties' && v === false) continue;
    if ((k === 'maximum' && v === Number.MAX_SAFE_INTEGER) || (k === 'minimum' && v === Number.MIN_SAFE_INTEGER)) continue;
    out[k] = structural(v);
  }
  return out;
}

export function openApiSchema(schema: z.ZodType): Json {
  return structural(z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input' })) as Json;
}

/** The Route CRD as an object. */
export function routeCrd(): Json {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${ROUTE_PLURAL}.${ROUTE_GROUP}`,
      annotations: { 'pyserve.io/generated-from': 'controller/api/route.ts' },
    },
    spec: {
      group: ROUTE_GROUP,
      scope: 'Namespaced',
      names: { kind: ROUTE_KIND, listKind: `${ROUTE_KIND}List`, plural: ROUTE_PLURAL, singular: 'route', shortNames: ['psr'], categories: ['pyserve'] },
      versions: [{
        name: ROUTE_VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          { name: 'Hostnames', type: 'string', jsonPath: '.spec.hostnames' },
          { name: 'Accepted', type: 'string', jsonPath: '.status.conditions[?(@.type=="Accepted")].status' },
          { name: 'Programmed', type: 'string', jsonPath: '.status.conditions[?(@.type=="Programmed")].status' },
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
        schema: {
          openAPIV3Schema: {
            type: 'object',
            description: 'Route sends HTTP requests matching hostnames and rules to weighted Service backends.',
            required: ['spec'],
            properties: {
              apiVersion: { type: 'string' },
              kind: { type: 'string' },
              metadata: { type: 'object' },
              spec: openApiSchema(RouteSpec),
              status: openApiSchema(RouteStatus),
            },
          },
        },
      }],
    },
  };
}

/** Every generated CRD file: name → YAML text. */
export function generatedCrds(): Map<string, string> {
  const header = '# Generated from controller/api by `npm run crds`. Do not edit.\n';
  return new Map([[`${ROUTE_GROUP}_${ROUTE_PLURAL}.yaml`, header + stringify(routeCrd(), { lineWidth: 0 })]]);
}
