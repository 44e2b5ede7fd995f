// The request half of an HTTP/1.1 exchange on PyServe's own server: the
// members of node:http's IncomingMessage the request path reads, and the
// body as a Readable fed by the connection's parser with backpressure.
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { RequestHead } from './request-parser.ts';

/** What a request needs from its connection. */
export interface RequestConnection {
  readonly socket: Socket;
  /** The consumer wants more body: start reading the socket again. */
  resumeBody(): void;
}

/** A client request; its body is the stream itself. */
export class H1Request extends Readable {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: '1.0' | '1.1';
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor: 0 | 1;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  /** RequestHead.forwardLines: what a proxy passes on of the head as it came. */
  readonly forwardLines: string | undefined;
  readonly trailers: Record<string, string> = {};
  readonly socket: Socket;
  /** The whole body was received (true at once for a request without one). */
  complete: boolean;
  readonly #conn: RequestConnection;
  #eof = false;

  constructor(conn: RequestConnection, head: RequestHead) {
    super();
    this.#conn = conn;
    this.socket = conn.socket;
    this.method = head.method;
    this.url = head.url;
    this.httpVersionMinor = head.minor;
    this.httpVersion = head.minor === 1 ? '1.1' : '1.0';
    this.headers = head.headers;
    this.rawHeaders = head.rawHeaders;
    this.forwardLines = head.forwardLines;
    this.complete = !head.hasBody;
  }

  override _read(): void {
    // A request without a body ends when first read: most are never read at all.
    if (this.complete && !this.#eof) {
      this.#eof = true;
      this.push(null);
    } else {
      this.#conn.resumeBody();
    }
  }

  // As node:http: the error goes to listeners only. A request refused before
  // any handler saw it, or one whose handler never reads the body, has none,
  // and an unheard 'error' would take the process down.
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    cb(this.listenerCount('error') > 0 ? err : null);
  }

  /** Body bytes from the parser; false when the consumer is behind. */
  pushBody(chunk: Buffer): boolean {
    return this.push(chunk);
  }

  /** The body is complete. */
  endBody(): void {
    this.complete = true;
    this.#eof = true;
    this.push(null);
  }
}

/** The error a request body fails with when the client goes away mid-body (as node:http). */
export function abortedError(): Error {
  return Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}
