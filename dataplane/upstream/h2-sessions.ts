// HTTP/2 sessions to upstream endpoints (h2c, h2, grpc, grpcs clusters). One
// multiplexed session per endpoint and transport, keyed by endpoint identity
// like the HTTP/1.1 pools, so sessions live through snapshot swaps. A session
// the upstream sends GOAWAY on, or that fails, is dropped from the registry at
// once: requests already on it finish, new ones open a fresh session.
import { connect } from 'node:http2';
import type { ClientHttp2Session, SecureClientSessionOptions } from 'node:http2';
import type { UpstreamEndpoint } from './endpoint.ts';

/** Error code of a session that did not connect within the route's connect timeout. */
export const H2_CONNECT_TIMEOUT = 'PYSERVE_H2_CONNECT_TIMEOUT';

/** Options of {@link H2SessionRegistry}. */
export interface H2SessionRegistryOptions {
  /** Close a session after this long without frames in either direction. Default 60 s. */
  idleTimeoutMs?: number;
  /** Called when a session is opened or closed, e.g. to log it. */
  onEvent?: (event: 'open' | 'close' | 'error', key: string, detail?: unknown) => void;
}

interface Entry {
  readonly session: ClientHttp2Session;
  readonly endpointKey: string;
}

// A session's stream ids run out at 2^31; move to a new session well before.
const MAX_STREAM_ID = 2 ** 30;

/** HTTP/2 sessions per upstream endpoint. */
export class H2SessionRegistry {
  readonly #sessions = new Map<string, Entry>();
  readonly #all = new Set<ClientHttp2Session>();
  readonly #opts: H2SessionRegistryOptions;
  #wanted: ReadonlySet<string> | undefined;

  constructor(opts: H2SessionRegistryOptions = {}) {
    this.#opts = opts;
  }

  /**
   * A usable session to `endpoint`, connecting one if needed. Requests made on
   * a session that is still connecting wait for it; if it fails to connect
   * within `connectTimeoutMs` they fail with {@link H2_CONNECT_TIMEOUT}.
   */
  get(endpoint: UpstreamEndpoint, tls: boolean, connectTimeoutMs: number): ClientHttp2Session {
    const key = `${tls ? 'h2' : 'h2c'}://${endpoint.key}`;
    const existing = this.#sessions.get(key);
    if (existing !== undefined && usable(existing.session)) return existing.session;
    if (existing !== undefined) this.#sessions.delete(key);

    const options: SecureClientSessionOptions = {
      // Server push is of no use to a proxy; refusing it saves the upstream the work.
      settings: { enablePush: false },
      ...(tls && {
        // As ingress-nginx (proxy_ssl_verify off), backend certificates are not verified.
        rejectUnauthorized: false,
        ALPNProtocols: ['h2'],
      }),
    };
    const session = connect(`${tls ? 'https' : 'http'}://${endpoint.key}`, options);
    this.#all.add(session);
    this.#opts.onEvent?.('open', key);
    const drop = (): void => {
      if (this.#sessions.get(key)?.session === session) this.#sessions.delete(key);
    };
    const timer = setTimeout(() => {
      session.destroy(Object.assign(new Error(`upstream connect timeout after ${connectTimeoutMs} ms`), { code: H2_CONNECT_TIMEOUT }));
    }, connectTimeoutMs);
    session.once('connect', () => clearTimeout(timer));
    session.on('error', (err) => {
      // Streams on the session see the failure themselves; here it only must not go unhandled.
      this.#opts.onEvent?.('error', key, err);
    });
    session.on('goaway', drop);
    session.once('close', () => {
      clearTimeout(timer);
      drop();
      this.#all.delete(session);
      this.#opts.onEvent?.('close', key);
    });
    session.setTimeout(this.#opts.idleTimeoutMs ?? 60_000, () => {
      drop();
      // Graceful: streams still open (a quiet gRPC stream) are let finish.
      session.close();
    });
    this.#sessions.set(key, { session, endpointKey: endpoint.key });
    if (this.#wanted !== undefined && !this.#wanted.has(endpoint.key)) {
      // Picked from an older table after its endpoint left: serve this request, then close.
      drop();
      queueMicrotask(() => session.close());
    }
    return session;
  }

  /** Close (gracefully) the sessions of endpoints that are not in `keys`. */
  retain(keys: ReadonlySet<string>): void {
    this.#wanted = keys;
    for (const [key, entry] of this.#sessions) {
      if (keys.has(entry.endpointKey)) continue;
      this.#sessions.delete(key);
      entry.session.close();
    }
  }

  /** Open sessions (closing ones excluded). */
  get size(): number {
    return this.#sessions.size;
  }

  /** Close every session, destroying whatever is still open after `graceMs`. */
  async closeAll(graceMs: number): Promise<void> {
    this.#sessions.clear();
    for (const s of this.#all) s.close();
    const deadline = Date.now() + graceMs;
    while (this.#all.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const s of this.#all) s.destroy();
  }
}

function usable(session: ClientHttp2Session): boolean {
  if (session.closed || session.destroyed) return false;
  const next = session.state.nextStreamID;
  return next === undefined || next < MAX_STREAM_ID;
}

const ERROR_CODES = [
  'NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED', 'FRAME_SIZE_ERROR',
  'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM', 'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED',
];

/** Name of an HTTP/2 error code (RFC 9113 §7), for messages. */
export function h2ErrorName(code: number | undefined): string {
  return code === undefined ? 'unknown' : ERROR_CODES[code] ?? `0x${code.toString(16)}`;
}
