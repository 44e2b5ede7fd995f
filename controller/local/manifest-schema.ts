/**
 * Shape checks for manifests read in local mode.
 *
 * In a cluster the API server validates objects before PyServe ever sees them.
 * Local mode has no API server, so these schemas stand in for the part of its
 * validation the translator relies on. They are loose (unknown fields pass, as
 * they would through kubectl) but strict about the fields PyServe reads.
 */
import { z } from 'zod';

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const Metadata = z.looseObject({
  name: z.string().regex(dns1123Subdomain, 'must be a lower-case RFC 1123 subdomain').max(253),
  namespace: z.string().regex(dns1123Label, 'must be a lower-case RFC 1123 label').max(63).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  labels: z.record(z.string(), z.string()).optional(),
  creationTimestamp: z.union([z.string(), z.date()]).optional(),
});

const ServiceBackendPort = z.looseObject({
  number: z.number().int().min(1).max(65535).optional(),
  name: z.string().min(1).optional(),
}).refine((p) => (p.number === undefined) !== (p.name === undefined), 'exactly one of port.number or port.name is required');

const IngressBackend = z.looseObject({
  service: z.looseObject({ name: z.string().min(1), port: ServiceBackendPort }).optional(),
  resource: z.looseObject({ kind: z.string(), name: z.string() }).optional(),
});

const Ingress = z.looseObject({
  apiVersion: z.literal('networking.k8s.io/v1'),
  kind: z.literal('Ingress'),
  metadata: Metadata,
  spec: z.looseObject({
    ingressClassName: z.string().optional(),
    defaultBackend: IngressBackend.optional(),
    tls: z.array(z.looseObject({ hosts: z.array(z.string()).optional(), secretName: z.string().optional() })).optional(),
    rules: z.array(z.looseObject({
      host: z.string().optional(),
      http: z.looseObject({
        paths: z.array(z.looseObject({
          path: z.string().optional(),
          pathType: z.enum(['Exact', 'Prefix', 'ImplementationSpecific']),
          backend: IngressBackend,
        })).min(1),
      }).optional(),
    })).optional(),
  }).optional().default({}),
});

const IngressClass = z.looseObject({
  apiVersion: z.literal('networking.k8s.io/v1'),
  kind: z.literal('IngressClass'),
  metadata: Metadata,
  spec: z.looseObject({ controller: z.string().optional() }).optional().default({}),
});

const Service = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Service'),
  metadata: Metadata,
  spec: z.looseObject({
    ports: z.array(z.looseObject({
      name: z.string().optional(),
      port: z.number().int().min(1).max(65535),
      targetPort: z.union([z.number().int(), z.string()]).optional(),
      protocol: z.string().optional(),
    })).optional(),
  }).optional().default({}),
});

const EndpointSlice = z.looseObject({
  apiVersion: z.literal('discovery.k8s.io/v1'),
  kind: z.literal('EndpointSlice'),
  metadata: Metadata,
  addressType: z.enum(['IPv4', 'IPv6', 'FQDN']),
  endpoints: z.array(z.looseObject({
    addresses: z.array(z.string()).min(1),
    conditions: z.looseObject({
      ready: z.boolean().optional(),
      serving: z.boolean().optional(),
      terminating: z.boolean().optional(),
    }).optional(),
  })).nullish(),
  ports: z.array(z.looseObject({
    name: z.string().optional(),
    port: z.number().int().min(1).max(65535).optional(),
    protocol: z.string().optional(),
  })).nullish(),
});

// Only TLS Secrets matter to PyServe. stringData is accepted as kubectl does
// and folded into base64 `data` by the parser, so the translator sees one shape.
const Secret = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Secret'),
  metadata: Metadata,
  type: z.literal('kubernetes.io/tls'),
  data: z.record(z.string(), z.string().regex(/^[A-Za-z0-9+/=\s]*$/, 'must be base64')).optional(),
  stringData: z.record(z.string(), z.string()).optional(),
});

/** Schemas for the kinds local mode understands, keyed by `kind`. */
export const manifestSchemas = {
  Ingress,
  IngressClass,
  Service,
  EndpointSlice,
  Secret,
} as const;

/** Kinds local mode reads; anything else is reported and ignored. */
export type ManifestKind = keyof typeof manifestSchemas;

export function isManifestKind(kind: unknown): kind is ManifestKind {
  return typeof kind === 'string' && Object.hasOwn(manifestSchemas, kind);
}
