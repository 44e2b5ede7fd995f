// The traffic listener and its graceful drain. Node keeps a keep-alive
// connection open after server.close(), so the drain also marks responses
// `Connection: close` and closes connections as they turn idle.
import { createServer, STATUS_CODES } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { NO_ROUTE } from '../observability/metrics.ts';
import { createRequestHandler } from './handler.ts';
import { listen } from './listen.ts';
import type { HandlerDeps } from './handler.ts';

/** Outcome of {@link TrafficServer.drain}. */
export interface DrainResult {
  /** True when requests were still running at the deadline and were cut. */
  forced: boolean;
  /** Requests cut at the deadline. */
  cut: number;
}

/** The traffic listener. */
export interface TrafficServer {
  readonly server: Server;
  /** Requests received and not finished. */
  readonly inFlight: number;
  /** Listen and resolve with the bound port. */
  listen(port: number, host: string): Promise<number>;
  /**
   * Stop accepting connections, let in-flight requests finish for up to
   * `timeoutMs`, then close every connection by force.
   */
  drain(timeoutMs: number): Promise<DrainResult>;
}

/** Create (but do not start) the traffic server. */
export function createTrafficServer(deps: HandlerDeps): TrafficServer {
  const active = new Set<ServerResponse>();
  let draining = false;
  let onIdle: (() => void) | undefined;

  const handler = createRequestHandler(deps, {
    started(res) {
      active.add(res);
      if (draining) res.setHeader('connection', 'close');
    },
    finished(res) {
      active.delete(res);
      if (!draining) return;
      // The connection this response used may now be idle: close it rather
      // than wait for the client's next request.
      setImmediate(() => server.closeIdleConnections());
      if (active.size === 0) onIdle?.();
    },
  });

  const server = createServer(handler);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const inProgress = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || (inProgress != null && inProgress.headersSent)) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const body = `${status} ${STATUS_CODES[status]}\n`;
    deps.metrics.requests.inc({ route: NO_ROUTE, code: status });
    deps.log.debug({ code: err.code, reason: err.message }, 'malformed request');
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${body.length}\r\n\r\n${body}`,
      () => socket.destroy(),
    );
  });

  return {
    server,
    get inFlight() {
      return active.size;
    },
    listen: (port, host) => listen(server, port, host),
    async drain(timeoutMs) {
      draining = true;
      for (const res of active) if (!res.headersSent) res.setHeader('connection', 'close');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const idle = active.size === 0 ? Promise.resolve(true) : new Promise<boolean>((resolve) => {
        onIdle = () => resolve(true);
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      const finished = await idle;
      clearTimeout(timer);
      const cut = active.size;
      server.closeAllConnections();
      await closed;
      return { forced: !finished, cut };
    },
  };
}
