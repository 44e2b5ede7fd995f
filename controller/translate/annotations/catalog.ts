// Every ingress-nginx annotation PyServe knows of, and what it does with it.
// This table decides which annotations are translated and which earn an
// UnsupportedAnnotation failure (a Warning Event) instead of silence; the
// user-facing form of it is docs/annotations.md (a unit test keeps the two
// in step).

/** ingress-nginx's annotation prefix. */
export const NGINX_PREFIX = 'nginx.ingress.kubernetes.io/';
/** PyServe's own prefix; where both are set, this one wins. */
export const PYSERVE_PREFIX = 'pyserve.io/';

/**
 * `supported`: translated with ingress-nginx's meaning. `partial`:
 * translated, with a difference docs/annotations.md describes.
 * `unsupported`: reported, not translated.
 */
export type Support = 'supported' | 'partial' | 'unsupported';

/** What PyServe does with one annotation. */
export interface AnnotationInfo {
  readonly support: Support;
  /**
   * An access-control annotation PyServe cannot enforce: the Ingress's paths
   * answer 503 instead of being served without the protection asked for.
   */
  readonly failClosed?: true;
  /** For unsupported ones: what to use instead, or why not (ends the failure message). */
  readonly note?: string;
}

const S: AnnotationInfo = { support: 'supported' };
const P: AnnotationInfo = { support: 'partial' };
const u = (note: string): AnnotationInfo => ({ support: 'unsupported', note });
const closed = (note: string): AnnotationInfo => ({ support: 'unsupported', failClosed: true, note });

const SNIPPET = u('PyServe runs no nginx configuration; express it as Route filters or policies');
const AUTH = u('authentication is not implemented yet');
const LATER = u('not implemented yet');
const NGINX_ONLY = u('it tunes nginx internals that PyServe does not have');
const TRACING = u('tracing is not implemented yet');

/** Annotation names (without prefix) → support. Names not listed are unknown (reported as such). */
export const ANNOTATIONS: Readonly<Record<string, AnnotationInfo>> = {
  // Routing, rewrites and redirects
  'app-root': S,
  'rewrite-target': S,
  'use-regex': S,
  'permanent-redirect': S,
  'permanent-redirect-code': S,
  'temporal-redirect': S,
  'temporal-redirect-code': S,
  'ssl-redirect': S,
  'force-ssl-redirect': S,
  'preserve-trailing-slash': P,
  'from-to-www-redirect': LATER,
  'server-alias': S,
  'x-forwarded-prefix': S,
  'upstream-vhost': S,
  // Canary
  'canary': S,
  'canary-by-header': S,
  'canary-by-header-value': S,
  'canary-by-header-pattern': P,
  'canary-by-cookie': S,
  'canary-weight': S,
  'canary-weight-total': S,
  // Balancing and affinity
  'load-balance': P,
  'upstream-hash-by': P,
  'upstream-hash-by-subset': u('subset hashing is not implemented; plain consistent hashing (upstream-hash-by) is'),
  'upstream-hash-by-subset-size': u('subset hashing is not implemented; plain consistent hashing (upstream-hash-by) is'),
  'affinity': S,
  'affinity-mode': P,
  'affinity-canary-behavior': P,
  'session-cookie-name': S,
  'session-cookie-path': S,
  'session-cookie-domain': S,
  'session-cookie-samesite': S,
  'session-cookie-conditional-samesite-none': P,
  'session-cookie-secure': S,
  'session-cookie-max-age': S,
  'session-cookie-expires': S,
  'session-cookie-change-on-failure': P,
  'service-upstream': S,
  // Backend connection, timeouts, retries, limits
  'backend-protocol': P,
  'proxy-connect-timeout': S,
  'proxy-send-timeout': P,
  'proxy-read-timeout': S,
  'proxy-next-upstream': P,
  'proxy-next-upstream-tries': S,
  'proxy-next-upstream-timeout': P,
  'proxy-body-size': S,
  'proxy-request-buffering': u('PyServe always streams request bodies'),
  'proxy-buffering': u('PyServe always streams responses'),
  'proxy-buffers-number': NGINX_ONLY,
  'proxy-buffer-size': NGINX_ONLY,
  'proxy-max-temp-file-size': NGINX_ONLY,
  'client-body-buffer-size': NGINX_ONLY,
  'proxy-http-version': u('PyServe speaks HTTP/1.1 (or HTTP/2, see backend-protocol) to backends'),
  'connection-proxy-header': NGINX_ONLY,
  'proxy-cookie-domain': LATER,
  'proxy-cookie-path': LATER,
  'proxy-redirect-from': LATER,
  'proxy-redirect-to': LATER,
  'proxy-ssl-secret': u('backend client certificates are not implemented yet'),
  'proxy-ssl-ciphers': u('backend TLS settings are not implemented yet'),
  'proxy-ssl-name': u('backend TLS settings are not implemented yet'),
  'proxy-ssl-protocols': u('backend TLS settings are not implemented yet'),
  'proxy-ssl-verify': u('backend certificates are not verified yet'),
  'proxy-ssl-verify-depth': u('backend certificates are not verified yet'),
  'proxy-ssl-server-name': u('backend TLS settings are not implemented yet'),
  'custom-http-errors': LATER,
  'default-backend': u('use the controller\'s --default-backend or the Ingress spec.defaultBackend'),
  // Access control: fail closed when set, open when not understood would expose what it protects
  'auth-type': closed('basic and digest authentication are not implemented yet'),
  'auth-url': closed('external authentication is not implemented yet'),
  'auth-tls-secret': closed('client certificate authentication is not implemented yet'),
  'whitelist-source-range': closed('IP allow lists are not implemented yet'),
  'allowlist-source-range': closed('IP allow lists are not implemented yet'),
  'denylist-source-range': closed('IP deny lists are not implemented yet'),
  'auth-secret': AUTH,
  'auth-secret-type': AUTH,
  'auth-realm': AUTH,
  'auth-method': AUTH,
  'auth-signin': AUTH,
  'auth-signin-redirect-param': AUTH,
  'auth-response-headers': AUTH,
  'auth-request-redirect': AUTH,
  'auth-cache-key': AUTH,
  'auth-cache-duration': AUTH,
  'auth-keepalive': AUTH,
  'auth-keepalive-requests': AUTH,
  'auth-keepalive-timeout': AUTH,
  'auth-keepalive-share-vars': AUTH,
  'auth-proxy-set-headers': AUTH,
  'auth-always-set-cookie': AUTH,
  'auth-tls-verify-depth': AUTH,
  'auth-tls-verify-client': AUTH,
  'auth-tls-error-page': AUTH,
  'auth-tls-pass-certificate-to-upstream': AUTH,
  'auth-tls-match-cn': AUTH,
  'enable-global-auth': AUTH,
  'satisfy': AUTH,
  // Snippets: never, by design
  'configuration-snippet': SNIPPET,
  'server-snippet': SNIPPET,
  'stream-snippet': SNIPPET,
  'auth-snippet': SNIPPET,
  'modsecurity-snippet': SNIPPET,
  // Limits, CORS, headers
  'limit-connections': LATER,
  'limit-rps': LATER,
  'limit-rpm': LATER,
  'limit-burst-multiplier': LATER,
  'limit-rate': LATER,
  'limit-rate-after': LATER,
  'limit-whitelist': LATER,
  'limit-allowlist': LATER,
  'global-rate-limit': LATER,
  'global-rate-limit-window': LATER,
  'global-rate-limit-key': LATER,
  'global-rate-limit-ignored-cidrs': LATER,
  'enable-cors': LATER,
  'cors-allow-origin': LATER,
  'cors-allow-methods': LATER,
  'cors-allow-headers': LATER,
  'cors-expose-headers': LATER,
  'cors-allow-credentials': LATER,
  'cors-max-age': LATER,
  'custom-headers': u('use a Route with a ResponseHeaderModifier filter'),
  'mirror-target': u('use a Route with a RequestMirror filter'),
  'mirror-host': u('use a Route with a RequestMirror filter'),
  'mirror-request-body': u('use a Route with a RequestMirror filter'),
  // TLS at the listener
  'ssl-passthrough': u('TLS passthrough is not implemented'),
  'ssl-ciphers': u('cipher lists are listener-wide in PyServe (the controller\'s TLS settings)'),
  'ssl-prefer-server-ciphers': u('cipher preferences are listener-wide in PyServe'),
  'http2-push-preload': u('HTTP/2 server push is obsolete and not implemented'),
  // Observability and WAF
  'enable-access-log': u('the access log is switched per dataplane (--access-log), not per Ingress'),
  'enable-rewrite-log': NGINX_ONLY,
  'enable-opentracing': TRACING,
  'opentracing-trust-incoming-span': TRACING,
  'enable-opentelemetry': TRACING,
  'opentelemetry-trust-incoming-span': TRACING,
  'opentelemetry-operation-name': TRACING,
  'enable-influxdb': u('InfluxDB export is not implemented; use the Prometheus metrics'),
  'influxdb-measurement': u('InfluxDB export is not implemented; use the Prometheus metrics'),
  'influxdb-port': u('InfluxDB export is not implemented; use the Prometheus metrics'),
  'influxdb-host': u('InfluxDB export is not implemented; use the Prometheus metrics'),
  'influxdb-server-name': u('InfluxDB export is not implemented; use the Prometheus metrics'),
  'enable-modsecurity': u('no web application firewall is built in'),
  'enable-owasp-core-rules': u('no web application firewall is built in'),
  'modsecurity-transaction-id': u('no web application firewall is built in'),
  'fastcgi-index': u('FastCGI backends are not supported'),
  'fastcgi-params-configmap': u('FastCGI backends are not supported'),
  // Removed from ingress-nginx long ago, still seen in old manifests
  'secure-backends': u('removed from ingress-nginx; use backend-protocol: HTTPS'),
  'grpc-backend': u('removed from ingress-nginx; use backend-protocol: GRPC'),
  'add-base-url': u('removed from ingress-nginx'),
  'base-url-scheme': u('removed from ingress-nginx'),
};

/** Names of the access-control annotations that make an Ingress fail closed. */
export const FAIL_CLOSED: readonly string[] = Object.entries(ANNOTATIONS).filter(([, i]) => i.failClosed === true).map(([n]) => n);
