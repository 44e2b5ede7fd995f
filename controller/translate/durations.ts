// Route timeouts → snapshot milliseconds. The CRD schema already checks the
// duration syntax; what it cannot check is whether the value fits what the
// dataplane accepts, and that is what turns into InvalidTimeout here.
import type { Timeouts } from '../../dataplane/snapshot/schema.ts';

// Gateway API (GEP-2257) durations: one to four <1-5 digits><unit> parts.
const WHOLE = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
// `ms` before `m`, or "500ms" would read as 500 minutes and a stray "s".
const PART = /([0-9]{1,5})(ms|h|m|s)/g;
const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;

/**
 * Milliseconds of a GEP-2257 duration (`500ms`, `10s`, `1m30s`), read as
 * Go's time.ParseDuration reads it: parts add up, so `1s1s` is 2 s.
 * Undefined when the text is not such a duration.
 */
export function parseDuration(text: string): number | undefined {
  if (!WHOLE.test(text)) return undefined;
  let ms = 0;
  for (const [, digits, unit] of text.matchAll(PART)) ms += Number(digits) * UNIT_MS[unit as keyof typeof UNIT_MS];
  return ms;
}

/** The `timeouts` of a Route rule, as validated by the CRD schema. */
export interface RouteTimeoutsSpec {
  readonly request?: string | undefined;
  readonly backendRequest?: string | undefined;
  readonly connect?: string | undefined;
}

/** A problem with one timeout, by its field name inside `timeouts`. */
export interface TimeoutProblem {
  readonly field: 'request' | 'backendRequest' | 'connect';
  readonly message: string;
}

/** Outcome of {@link translateTimeouts}: snapshot timeouts (undefined when none are set), or every problem found. */
export type TimeoutsResult =
  | { readonly ok: true; readonly timeouts: Timeouts | undefined }
  | { readonly ok: false; readonly problems: readonly TimeoutProblem[] };

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/**
 * Map Route timeouts onto the snapshot's: `request` → `requestMs` (0
 * disables it, as in Gateway API), `backendRequest` → `upstreamResponseMs`,
 * `connect` → `upstreamConnectMs`. Bounds are the snapshot's. As Gateway
 * API requires, `backendRequest` may not exceed a non-zero `request`.
 */
export function translateTimeouts(spec: RouteTimeoutsSpec | undefined): TimeoutsResult {
  if (!spec) return { ok: true, timeouts: undefined };
  const problems: TimeoutProblem[] = [];
  const read = (field: TimeoutProblem['field'], max: number, ifZero?: string): number | undefined => {
    const text = spec[field];
    if (text === undefined) return undefined;
    const ms = parseDuration(text);
    if (ms === undefined) problems.push({ field, message: `${JSON.stringify(text)} is not a duration such as 500ms, 10s or 1m30s` });
    else if (ms === 0 && ifZero !== undefined) problems.push({ field, message: `${JSON.stringify(text)} ${ifZero}` });
    else if (ms > max) problems.push({ field, message: `${JSON.stringify(text)} is longer than the maximum of ${max === DAY_MS ? '24h' : '1h'}` });
    else return ms;
    return undefined;
  };
  const requestMs = read('request', DAY_MS);
  const upstreamResponseMs = read('backendRequest', DAY_MS, 'would disable the backend timeout, which is not supported; use a value from 1ms to 24h');
  const upstreamConnectMs = read('connect', HOUR_MS, 'is not a usable connect timeout; use a value from 1ms to 1h');
  if (requestMs !== undefined && requestMs > 0 && upstreamResponseMs !== undefined && upstreamResponseMs > requestMs) {
    problems.push({ field: 'backendRequest', message: `${JSON.stringify(spec.backendRequest)} is longer than the request timeout ${JSON.stringify(spec.request)}` });
  }
  if (problems.length) return { ok: false, problems };
  const timeouts: Timeouts = {
    ...(requestMs !== undefined ? { requestMs } : {}),
    ...(upstreamResponseMs !== undefined ? { upstreamResponseMs } : {}),
    ...(upstreamConnectMs !== undefined ? { upstreamConnectMs } : {}),
  };
  return { ok: true, timeouts: Object.keys(timeouts).length ? timeouts : undefined };
}
