/** Per-request state shared by the handler, the proxy and the access log. */
export interface RequestContext {
  readonly requestId: string;
  /** `performance.now()` when the request arrived. */
  readonly startedAt: number;
  readonly clientAddress: string;
  readonly method: string;
  /** Raw path without query. */
  readonly path: string;
  /** Normalized host used for the virtual host lookup. */
  readonly host: string;
  /** Arrived over TLS (either HTTP version): `X-Forwarded-Proto: https`, no redirect, HSTS. */
  readonly secure: boolean;
  /** A gRPC request (`content-type: application/grpc…`): local errors are answered as gRPC statuses. */
  readonly grpc: boolean;
  /** Matched route name. */
  route: string | undefined;
  /** Cluster the request was sent to. */
  cluster: string | undefined;
  /** Upstream `address:port`. */
  upstream: string | undefined;
  /**
   * Status to record when it is not what the response carries: 499 when the
   * client went away before a response was sent.
   */
  status: number | undefined;
  /** Short reason for a failure, for the access log. */
  error: string | undefined;
}
