/**
 * Snapshot builders and the admin client used by dataplane tests. Snapshots
 * are built with the contract's own buildSnapshot, so hashes are real.
 */
import { request } from 'undici';
import { buildSnapshot } from '../../dataplane/snapshot/build.ts';
import type { Endpoint, PathMatch, Route, RouteMatch, Snapshot, Timeouts, VirtualHost } from '../../dataplane/snapshot/schema.ts';

/** Shorthands for path conditions. */
export const exact = (value: string): PathMatch => ({ type: 'Exact', value });
export const prefix = (value: string): PathMatch => ({ type: 'Prefix', value });
export const regex = (value: string): PathMatch => ({ type: 'RegularExpression', value });

/** A forward route to one cluster, or to weighted clusters given as `[name, weight]` pairs. */
export function forward(
  name: string,
  match: PathMatch | RouteMatch,
  clusters: string | [string, number][],
  timeouts?: Timeouts,
): Route {
  const backends = typeof clusters === 'string' ? [{ cluster: clusters, weight: 1 }] : clusters.map(([cluster, weight]) => ({ cluster, weight }));
  return {
    name,
    match: 'path' in match ? match : { path: match },
    action: { type: 'forward', backends },
    ...(timeouts && { timeouts }),
  };
}

/** A direct-response route. */
export function direct(name: string, match: PathMatch | RouteMatch, status: number, body?: string, contentType?: string): Route {
  return {
    name,
    match: 'path' in match ? match : { path: match },
    action: { type: 'direct', status, ...(body !== undefined && { body }), ...(contentType !== undefined && { contentType }) },
  };
}

/** A virtual host. */
export function vhost(name: string, hostnames: string[], routes: Route[]): VirtualHost {
  return { name, hostnames, routes };
}

/**
 * A hashed snapshot. Every cluster named in `endpoints` is declared in
 * routing (so routing stays identical when only endpoints change); list a
 * cluster with `[]` to declare it without endpoints.
 */
export function snapshot(generation: number, virtualHosts: VirtualHost[], endpoints: Record<string, Endpoint[]>): Snapshot {
  const names = Object.keys(endpoints).sort();
  return buildSnapshot(
    generation,
    { virtualHosts, clusters: names.map((name) => ({ name, protocol: 'http' as const })) },
    { clusters: names.map((cluster) => ({ cluster, endpoints: endpoints[cluster]! })) },
  );
}

/** Response of an admin call. */
export interface AdminResponse {
  status: number;
  text: string;
  /** Parsed body, or undefined when it is not JSON. */
  json: Record<string, unknown> | undefined;
}

/** Options of {@link pushSnapshot}. */
export interface PushOptions {
  /** Token to present; null sends no Authorization header. Default `t`. */
  token?: string | null;
  /** Override the request headers entirely. */
  headers?: Record<string, string>;
}

async function adminCall(url: string, method: 'GET' | 'PUT', body: string | Buffer | undefined, opts: PushOptions): Promise<AdminResponse> {
  const token = opts.token === undefined ? 't' : opts.token;
  const headers = opts.headers ?? {
    ...(token !== null && { authorization: `Bearer ${token}` }),
    ...(body !== undefined && { 'content-type': 'application/json' }),
  };
  const res = await request(url, { method, headers, body });
  const text = await res.body.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, text, json };
}

/** PUT a snapshot (an object is JSON-encoded; strings and buffers are sent as they are). */
export function pushSnapshot(adminUrl: string, body: Snapshot | string | Buffer, opts: PushOptions = {}): Promise<AdminResponse> {
  const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return adminCall(`${adminUrl}/v1/snapshot`, 'PUT', payload, opts);
}

/** PUT a snapshot and fail unless it was accepted. */
export async function applySnapshot(adminUrl: string, snap: Snapshot, opts: PushOptions = {}): Promise<AdminResponse> {
  const res = await pushSnapshot(adminUrl, snap, opts);
  if (res.status !== 200) throw new Error(`snapshot ${snap.generation} refused: ${res.status} ${res.text}`);
  return res;
}

/** GET /v1/snapshot. */
export function getSnapshotState(adminUrl: string, opts: PushOptions = {}): Promise<AdminResponse> {
  return adminCall(`${adminUrl}/v1/snapshot`, 'GET', undefined, opts);
}
