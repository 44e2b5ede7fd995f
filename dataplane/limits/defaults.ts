// Connection and request limits of the traffic listener, with defaults chosen
// to match what an ingress-nginx user already expects (its ConfigMap defaults),
// except where Node's model differs; docs/limits.md explains each.

/** Listener-wide limits (flags). Per-route overrides live in the snapshot. */
export interface ListenerLimits {
  /**
   * Largest request head (request line plus headers) in bytes; beyond it the
   * request gets 431 and the connection closes. Node's `maxHeaderSize`.
   * ingress-nginx allows 4 buffers of 8 KiB (`large-client-header-buffers`).
   */
  maxHeaderBytes: number;
  /** Longest request target (path and query) in bytes; longer gets 414. nginx: one 8 KiB buffer. */
  maxUriBytes: number;
  /**
   * Default largest request body in bytes, 0 for no limit; routes override it.
   * ingress-nginx `proxy-body-size` is 1m.
   */
  maxBodyBytes: number;
  /** Time to receive the whole request head (slowloris); 408 after it. nginx `client_header_timeout` 60 s. */
  clientHeaderTimeoutMs: number;
  /**
   * Longest gap between two pieces of a request body while the proxy is
   * reading it; 408 (or a cut connection once the response started). Time the
   * proxy itself stops reading (upstream backpressure) does not count. nginx
   * `client_body_timeout` 60 s.
   */
  clientBodyTimeoutMs: number;
  /**
   * Time to receive the whole request, head and body, 0 for none (Node's
   * `requestTimeout`). Off by default: nginx has no such limit, and a large
   * upload over a slow link must not be cut while it keeps moving.
   */
  clientRequestTimeoutMs: number;
  /** Idle time of a client keep-alive connection between requests. ingress-nginx `keep-alive` 75 s. */
  keepAliveTimeoutMs: number;
  /**
   * Most client connections open at once in this process, 0 for no limit.
   * Beyond it new connections are accepted and closed at once (Node's
   * `server.maxConnections`). ingress-nginx `max-worker-connections` 16384.
   */
  maxConnections: number;
}

/** The defaults; see {@link ListenerLimits} for where each comes from. */
export const DEFAULT_LIMITS: Readonly<ListenerLimits> = {
  maxHeaderBytes: 32 * 1024,
  maxUriBytes: 8 * 1024,
  maxBodyBytes: 1024 * 1024,
  clientHeaderTimeoutMs: 60_000,
  clientBodyTimeoutMs: 60_000,
  clientRequestTimeoutMs: 0,
  keepAliveTimeoutMs: 75_000,
  maxConnections: 16_384,
};
