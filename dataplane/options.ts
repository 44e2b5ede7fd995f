// Command line and environment → validated options. Flags win over the
// environment so a one-off override never needs the env cleared.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { LOG_LEVELS } from './observability/log.ts';
import { autoWorkers } from './cluster/cpus.ts';
import { intFlag } from './int-flag.ts';
import { TRAFFIC_FEATURE_BOOLEANS, TRAFFIC_FEATURE_FLAGS, trafficFeatureOptions, trafficFeatureSchema } from './limits/flags.ts';
import type { TrafficFeatureOptions } from './limits/flags.ts';

/** Validated dataplane options, as {@link startDataplane} takes them. */
export interface DataplaneOptions extends TrafficFeatureOptions {
  /** Traffic listener address. Default `0.0.0.0`. */
  trafficHost: string;
  /** Traffic listener port; 0 picks a free one. Default 8080. */
  trafficPort: number;
  /** HTTPS listener port (same address as traffic); 0 picks a free one. Default 8443. */
  httpsPort: number;
  /**
   * Port that HTTP → HTTPS redirects send clients to: the HTTPS port as
   * clients see it (a Service maps 443 → 8443). 0 means the bound HTTPS port.
   * Default 443.
   */
  httpsRedirectPort: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per client connection. Default 128. */
  http2MaxConcurrentStreams: number;
  /** Admin listener address. Default `0.0.0.0`. */
  adminHost: string;
  /** Admin listener port; 0 picks a free one. Default 9901. */
  adminPort: number;
  /** Bearer token of the admin API; undefined only with `insecureAdmin`. */
  adminToken: string | undefined;
  /** Serve the admin API without a token. Must be asked for explicitly. */
  insecureAdmin: boolean;
  /** Longest wait for in-flight requests on shutdown. Default 15000. */
  drainTimeoutMs: number;
  /** Largest accepted snapshot body. Default 64 MiB. */
  maxSnapshotBytes: number;
  /** Diagnostic log level (the access log has its own switch). Default `info`. */
  logLevel: (typeof LOG_LEVELS)[number];
  /** Write one access-log line per request to stdout. Default true. */
  accessLog: boolean;
  /** Also export `nodejs_gc_duration_seconds` (a GC observer; costs old-space garbage per GC). Default false. */
  gcMetrics: boolean;
  /**
   * Traffic worker processes (node:cluster); 1 runs everything in one process.
   * Default: one per CPU the process may use (cluster/workers.ts `autoWorkers`).
   */
  workers: number;
}

/** Flags, their env variables, and help text. */
const FLAGS = {
  'traffic-port': { env: 'PYSERVE_TRAFFIC_PORT', help: 'traffic listener port (default 8080, 0 = any free port)' },
  'admin-port': { env: 'PYSERVE_ADMIN_PORT', help: 'admin listener port (default 9901, 0 = any free port)' },
  'https-port': { env: 'PYSERVE_HTTPS_PORT', help: 'HTTPS listener port, on the traffic address (default 8443, 0 = any free port)' },
  'https-redirect-port': { env: 'PYSERVE_HTTPS_REDIRECT_PORT', help: 'port in HTTP -> HTTPS redirects (default 443, 0 = the bound HTTPS port)' },
  'http2-max-concurrent-streams': { env: 'PYSERVE_HTTP2_MAX_CONCURRENT_STREAMS', help: 'HTTP/2 streams per client connection (default 128)' },
  host: { env: 'PYSERVE_HOST', help: 'traffic listener address (default 0.0.0.0)' },
  'admin-host': { env: 'PYSERVE_ADMIN_HOST', help: 'admin listener address (default 0.0.0.0)' },
  'admin-token': { env: 'PYSERVE_ADMIN_TOKEN', help: 'admin bearer token (prefer the env variable or a file: flags show in ps)' },
  'admin-token-file': { env: 'PYSERVE_ADMIN_TOKEN_FILE', help: 'file holding the admin bearer token (surrounding whitespace trimmed)' },
  'insecure-admin': { env: 'PYSERVE_INSECURE_ADMIN', help: 'serve the admin API without a token (never in production)' },
  'drain-timeout-ms': { env: 'PYSERVE_DRAIN_TIMEOUT_MS', help: 'on SIGTERM, wait this long for in-flight requests (default 15000)' },
  'max-snapshot-bytes': { env: 'PYSERVE_MAX_SNAPSHOT_BYTES', help: 'largest accepted snapshot body (default 67108864)' },
  'log-level': { env: 'PYSERVE_LOG_LEVEL', help: `diagnostic log level: ${LOG_LEVELS.join(', ')} (default info)` },
  'access-log': { env: 'PYSERVE_ACCESS_LOG', help: 'one JSON line per request on stdout: on or off (default on)' },
  'gc-metrics': { env: 'PYSERVE_GC_METRICS', help: 'export nodejs_gc_duration_seconds: on or off (default off; ~5 KiB of old-space garbage per GC)' },
  workers: { env: 'PYSERVE_WORKERS', help: 'traffic worker processes, or auto = one per usable CPU (default auto; 1 = single process)' },
  // Limits, timeouts, compression: limits/flags.ts.
  ...TRAFFIC_FEATURE_FLAGS,
} as const;

const port = intFlag(0, 65535);
// on/off as documented; true/false as a chart or an env file may write it.
const onOff = z.enum(['on', 'off', 'true', 'false']).transform((v) => v === 'on' || v === 'true');
const Schema = z.object({
  'traffic-port': port.default(8080),
  'admin-port': port.default(9901),
  'https-port': port.default(8443),
  'https-redirect-port': port.default(443),
  'http2-max-concurrent-streams': intFlag(1, 100_000).default(128),
  host: z.string().min(1).default('0.0.0.0'),
  'admin-host': z.string().min(1).default('0.0.0.0'),
  'admin-token': z.string().optional(),
  'admin-token-file': z.string().optional(),
  'insecure-admin': z.union([z.boolean(), z.enum(['true', '1', 'false', '0', '']).transform((v) => v === 'true' || v === '1')]).default(false),
  'drain-timeout-ms': intFlag(0, 3_600_000).default(15_000),
  'max-snapshot-bytes': intFlag(1024, 2 ** 31).default(64 * 1024 * 1024),
  'log-level': z.enum(LOG_LEVELS).default('info'),
  'access-log': onOff.default(true),
  'gc-metrics': onOff.default(false),
  workers: z.union([z.literal('auto'), intFlag(1, 1024)]).default('auto'),
  ...trafficFeatureSchema,
});

/** Thrown for unusable options; main prints the message and exits 2. */
export class OptionsError extends Error {}

/** Usage text for `--help`. */
export function usage(): string {
  const lines = Object.entries(FLAGS).map(([flag, f]) => `  --${flag.padEnd(20)} ${f.help}\n  ${''.padEnd(22)} env ${f.env}`);
  return `usage: node dataplane/main.ts [flags]\n\n${lines.join('\n')}\n  --help                 this text\n`;
}

/** Parse argv and env. Returns undefined when `--help` was asked for. */
export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): DataplaneOptions | undefined {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        ...Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: k === 'insecure-admin' || TRAFFIC_FEATURE_BOOLEANS.has(k) ? 'boolean' : 'string' } as const])),
        help: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new OptionsError((err as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help === true) return undefined;
  const merged: Record<string, unknown> = {};
  for (const [flag, f] of Object.entries(FLAGS)) {
    // An empty variable counts as unset, as shells and manifests often leave them.
    const v = values[flag] ?? (env[f.env] === '' ? undefined : env[f.env]);
    if (v !== undefined) merged[flag] = v;
  }
  const result = Schema.safeParse(merged);
  if (!result.success) {
    throw new OptionsError(result.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; '));
  }
  const o = result.data;
  let token = o['admin-token'];
  if (token === undefined && o['admin-token-file'] !== undefined) {
    try {
      token = readFileSync(o['admin-token-file'], 'utf8').trim();
    } catch (err) {
      throw new OptionsError(`--admin-token-file: ${(err as Error).message}`);
    }
  }
  if (token === '') token = undefined;
  if (token === undefined && !o['insecure-admin']) {
    throw new OptionsError('an admin token is required: --admin-token, PYSERVE_ADMIN_TOKEN or --admin-token-file (or --insecure-admin to run without one)');
  }
  return {
    trafficHost: o.host,
    trafficPort: o['traffic-port'],
    httpsPort: o['https-port'],
    httpsRedirectPort: o['https-redirect-port'],
    http2MaxConcurrentStreams: o['http2-max-concurrent-streams'],
    adminHost: o['admin-host'],
    adminPort: o['admin-port'],
    adminToken: token,
    insecureAdmin: o['insecure-admin'],
    drainTimeoutMs: o['drain-timeout-ms'],
    maxSnapshotBytes: o['max-snapshot-bytes'],
    logLevel: o['log-level'],
    accessLog: o['access-log'],
    gcMetrics: o['gc-metrics'],
    workers: o.workers === 'auto' ? autoWorkers() : o.workers,
    ...trafficFeatureOptions(o),
  };
}
