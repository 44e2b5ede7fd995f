// Flags of the traffic features this folder and middleware/ and websocket/
// implement: limits, timeouts, compression. Kept apart from options.ts so the
// flag table there only spreads these in; each default is explained in
// docs/limits.md, docs/compression.md and docs/websocket.md.
import { intFlag } from '../int-flag.ts';
import { z } from 'zod';
import type { TimeoutDefaults } from '../config/compile.ts';
import { DEFAULT_TIMEOUTS } from '../config/compile.ts';
import { CODINGS } from '../middleware/accept-encoding.ts';
import type { Coding } from '../middleware/accept-encoding.ts';
import { DEFAULT_COMPRESSION } from '../middleware/compression.ts';
import type { CompressionSettings } from '../middleware/compression.ts';
import { DEFAULT_LIMITS } from './defaults.ts';
import type { ListenerLimits } from './defaults.ts';

/** The options these flags produce. */
export interface TrafficFeatureOptions {
  /** Listener-wide limits. */
  limits: ListenerLimits;
  /** Route timeout defaults, for routes that set none. */
  timeouts: TimeoutDefaults;
  /** Compression defaults, for routes that set none. */
  compression: CompressionSettings;
}

/** Flag → environment variable and help text. */
export const TRAFFIC_FEATURE_FLAGS = {
  'max-header-bytes': { env: 'PYSERVE_MAX_HEADER_BYTES', help: `largest request head, request line included; 431 beyond (default ${DEFAULT_LIMITS.maxHeaderBytes})` },
  'max-uri-bytes': { env: 'PYSERVE_MAX_URI_BYTES', help: `longest request target; 414 beyond (default ${DEFAULT_LIMITS.maxUriBytes})` },
  'max-body-bytes': { env: 'PYSERVE_MAX_BODY_BYTES', help: `default largest request body, 0 = no limit; 413 beyond (default ${DEFAULT_LIMITS.maxBodyBytes})` },
  'client-header-timeout-ms': { env: 'PYSERVE_CLIENT_HEADER_TIMEOUT_MS', help: `time to receive a request head; 408 after (default ${DEFAULT_LIMITS.clientHeaderTimeoutMs})` },
  'client-body-timeout-ms': { env: 'PYSERVE_CLIENT_BODY_TIMEOUT_MS', help: `longest client silence inside a request body, 0 = none (default ${DEFAULT_LIMITS.clientBodyTimeoutMs})` },
  'client-request-timeout-ms': { env: 'PYSERVE_CLIENT_REQUEST_TIMEOUT_MS', help: 'time to receive a whole request, 0 = none (default 0)' },
  'keepalive-timeout-ms': { env: 'PYSERVE_KEEPALIVE_TIMEOUT_MS', help: `idle time of a client keep-alive connection (default ${DEFAULT_LIMITS.keepAliveTimeoutMs})` },
  'max-connections': { env: 'PYSERVE_MAX_CONNECTIONS', help: `client connections per listening port, 0 = no limit (default ${DEFAULT_LIMITS.maxConnections})` },
  'upstream-connect-timeout-ms': { env: 'PYSERVE_UPSTREAM_CONNECT_TIMEOUT_MS', help: `default upstream connect timeout (default ${DEFAULT_TIMEOUTS.connectMs})` },
  'upstream-response-timeout-ms': { env: 'PYSERVE_UPSTREAM_RESPONSE_TIMEOUT_MS', help: `default time to upstream headers and between body chunks (default ${DEFAULT_TIMEOUTS.responseMs})` },
  'request-timeout-ms': { env: 'PYSERVE_REQUEST_TIMEOUT_MS', help: 'default whole-request timeout, 0 = none (default 0)' },
  'websocket-idle-timeout-ms': { env: 'PYSERVE_WEBSOCKET_IDLE_TIMEOUT_MS', help: `default idle time before a WebSocket is closed, 0 = never (default ${DEFAULT_TIMEOUTS.websocketIdleMs})` },
  compression: { env: 'PYSERVE_COMPRESSION', help: 'compress responses on routes that do not say (default off)' },
  'compression-min-length': { env: 'PYSERVE_COMPRESSION_MIN_LENGTH', help: `smallest Content-Length compressed (default ${DEFAULT_COMPRESSION.minLength})` },
  'compression-types': { env: 'PYSERVE_COMPRESSION_TYPES', help: 'comma-separated media types to compress (default: ingress-nginx gzip-types + text/html)' },
  'compression-algorithms': { env: 'PYSERVE_COMPRESSION_ALGORITHMS', help: 'comma-separated codings in order of preference (default zstd,br,gzip,deflate)' },
} as const;

/** Flags among {@link TRAFFIC_FEATURE_FLAGS} that take no value. */
export const TRAFFIC_FEATURE_BOOLEANS: ReadonlySet<string> = new Set(['compression']);

const ms = (max: number, dflt: number) => intFlag(0, max).default(dflt);
const list = z.string().transform((v) => v.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t !== ''));
const bool = z.union([z.boolean(), z.enum(['true', '1', 'false', '0', '']).transform((v) => v === 'true' || v === '1')]);

/** zod fields for the flags, to spread into the options schema. */
export const trafficFeatureSchema = {
  'max-header-bytes': intFlag(1024, 1024 * 1024).default(DEFAULT_LIMITS.maxHeaderBytes),
  'max-uri-bytes': intFlag(256, 1024 * 1024).default(DEFAULT_LIMITS.maxUriBytes),
  'max-body-bytes': intFlag(0, Number.MAX_SAFE_INTEGER).default(DEFAULT_LIMITS.maxBodyBytes),
  'client-header-timeout-ms': intFlag(1, 3_600_000).default(DEFAULT_LIMITS.clientHeaderTimeoutMs),
  'client-body-timeout-ms': ms(3_600_000, DEFAULT_LIMITS.clientBodyTimeoutMs),
  'client-request-timeout-ms': ms(86_400_000, DEFAULT_LIMITS.clientRequestTimeoutMs),
  // Not 0: for Node that means "never time out", the opposite of nginx's "no keep-alive".
  'keepalive-timeout-ms': intFlag(1, 3_600_000).default(DEFAULT_LIMITS.keepAliveTimeoutMs),
  'max-connections': intFlag(0, 10_000_000).default(DEFAULT_LIMITS.maxConnections),
  'upstream-connect-timeout-ms': intFlag(1, 3_600_000).default(DEFAULT_TIMEOUTS.connectMs),
  'upstream-response-timeout-ms': intFlag(1, 86_400_000).default(DEFAULT_TIMEOUTS.responseMs),
  'request-timeout-ms': ms(86_400_000, DEFAULT_TIMEOUTS.requestMs),
  'websocket-idle-timeout-ms': ms(604_800_000, DEFAULT_TIMEOUTS.websocketIdleMs),
  compression: bool.default(DEFAULT_COMPRESSION.enabled),
  'compression-min-length': intFlag(0, 2 ** 31).default(DEFAULT_COMPRESSION.minLength),
  'compression-types': list.pipe(z.array(z.string().regex(/^(\*|[a-z0-9][a-z0-9!#$&^_.+-]*\/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*))$/, 'a media type, "type/*" or "*"')).min(1)).optional(),
  'compression-algorithms': list.pipe(z.array(z.enum(CODINGS)).min(1)).optional(),
};

type Parsed = z.output<z.ZodObject<typeof trafficFeatureSchema>>;

/** Parsed flag values → options. */
export function trafficFeatureOptions(o: Parsed): TrafficFeatureOptions {
  return {
    limits: {
      maxHeaderBytes: o['max-header-bytes'],
      maxUriBytes: o['max-uri-bytes'],
      maxBodyBytes: o['max-body-bytes'],
      clientHeaderTimeoutMs: o['client-header-timeout-ms'],
      clientBodyTimeoutMs: o['client-body-timeout-ms'],
      clientRequestTimeoutMs: o['client-request-timeout-ms'],
      keepAliveTimeoutMs: o['keepalive-timeout-ms'],
      maxConnections: o['max-connections'],
    },
    timeouts: {
      connectMs: o['upstream-connect-timeout-ms'],
      responseMs: o['upstream-response-timeout-ms'],
      requestMs: o['request-timeout-ms'],
      websocketIdleMs: o['websocket-idle-timeout-ms'],
    },
    compression: {
      enabled: o.compression,
      minLength: o['compression-min-length'],
      contentTypes: o['compression-types'] ?? DEFAULT_COMPRESSION.contentTypes,
      algorithms: [...new Set<Coding>(o['compression-algorithms'] ?? DEFAULT_COMPRESSION.algorithms)],
    },
  };
}
