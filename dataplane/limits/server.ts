// Applying the listener-wide limits to Node's HTTP/1.1 server, and mapping the
// parser's refusals to the status a client should see.
import type { Server, ServerOptions } from 'node:http';
import type { Server as NetServer } from 'node:net';
import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';
import type { ListenerLimits } from './defaults.ts';

/**
 * `http.createServer` options for the limits. They must be given at creation:
 * the connection-checking timer reads its interval when the server starts
 * listening (or is told it does).
 */
export function http1ServerOptions(limits: ListenerLimits): ServerOptions {
  // Node enforces header and request timeouts on a timer that defaults to
  // 30 s, which would let a slowloris live half a minute past its timeout.
  const shortest = Math.min(limits.clientHeaderTimeoutMs, limits.clientRequestTimeoutMs || Infinity);
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    // Node refuses a head timeout longer than the whole-request one; the head
    // is part of the request, so the shorter one is what applies anyway.
    headersTimeout: shortest,
    requestTimeout: limits.clientRequestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(5_000, Math.max(100, Math.floor(shortest / 10))),
  };
}

/**
 * Cap the connections of the listening sockets at `maxConnections` (0: no
 * cap). Node accepts a connection over the cap and closes it at once; each
 * such drop is counted in `pyserve_connections_dropped_total`.
 */
export function applyConnectionLimit(listeners: readonly NetServer[], maxConnections: number, registry?: Registry): void {
  if (maxConnections <= 0) return;
  const dropped = registry === undefined ? undefined : new Counter({
    name: 'pyserve_connections_dropped_total',
    help: 'Client connections closed on accept because the process already had max-connections open.',
    registers: [registry],
  });
  for (const l of listeners) {
    l.maxConnections = maxConnections;
    l.on('drop', () => dropped?.inc());
  }
}

/** The limits as properties, for an HTTP/1.1 server created elsewhere (before it listens). */
export function applyHttp1Limits(server: Server, limits: ListenerLimits): void {
  Object.assign(server, http1ServerOptions(limits));
}

// The request line is what overflowed when no line break came before the URI
// limit: nginx answers that with 414, so clients get the same hint here.
function requestLineTooLong(raw: unknown, maxUriBytes: number): boolean {
  if (!Buffer.isBuffer(raw) || !/^[A-Z]+ /.test(raw.subarray(0, 16).toString('latin1'))) return false;
  const eol = raw.indexOf(10);
  return (eol === -1 ? raw.length : eol) > maxUriBytes;
}

/**
 * Status for a request the parser refused (the `clientError` event), or
 * undefined when nothing should be written (the peer reset the connection).
 * Every such answer closes the connection: after a framing error the server
 * cannot tell where the next request would start (RFC 9112 §9.3).
 */
export function clientErrorStatus(err: NodeJS.ErrnoException & { rawPacket?: unknown }, limits: Pick<ListenerLimits, 'maxUriBytes'>): number | undefined {
  switch (err.code) {
    case 'ECONNRESET':
    case 'HPE_INVALID_EOF_STATE':
      return undefined;
    case 'HPE_HEADER_OVERFLOW':
      return requestLineTooLong(err.rawPacket, limits.maxUriBytes) ? 414 : 431;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 408;
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return 413;
    default:
      return 400;
  }
}
