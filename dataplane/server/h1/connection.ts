// One client connection of PyServe's HTTP/1.1 server: parse a request, hand
// it to the request handler, and only once its response is finished parse
// the next one. Pipelined requests wait (the socket is paused) instead of
// being parsed ahead, so a connection never holds more than one request and
// a little read-ahead. Timeouts are checked by the server's sweep from the
// phase timestamps kept here, so a request costs no timer of its own.
import { STATUS_CODES } from '../../node-http.ts';
import type { Socket } from 'node:net';
import { commaTokens } from '../../http1/syntax.ts';
import { abortedError, H1Request } from './request.ts';
import type { RequestConnection } from './request.ts';
import { RequestError, RequestParser } from './request-parser.ts';
import type { RequestEvents, RequestHead } from './request-parser.ts';
import { H1Response } from './response.ts';
import type { ResponseConnection } from './response.ts';
import type { ListEntry } from '../../entry-list.ts';

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly maxHeaderBytes: number;
  readonly maxUriBytes: number;
  /** `keep-alive: timeout=N\r\n` for responses on kept connections, or ''. */
  readonly keepAliveHint: string;
  request(req: H1Request, res: H1Response): void;
  /** A request with `Expect: 100-continue`; the handler decides whether to send the 100. */
  checkContinue(req: H1Request, res: H1Response): void;
  /** Whether this request should leave HTTP for another protocol (a WebSocket). */
  shouldUpgrade(req: H1Request): boolean;
  upgrade(req: H1Request, socket: Socket, head: Buffer): void;
  /** A request refused before the handler saw it (for metrics and the debug log). */
  refused(status: number, err: Error, socket: Socket): void;
  forget(conn: H1ServerConnection): void;
}

/** The client timeouts a connection's check applies, ms (0: none). */
export interface ConnectionTimeouts {
  readonly headersMs: number;
  readonly requestMs: number;
  readonly keepAliveMs: number;
  /** Silence while an unread body is dropped. */
  readonly bodyIdleMs: number;
}

/** Where the connection is between requests, for the timeouts. */
export const Phase = {
  /** Between requests: the keep-alive timeout runs. */
  Idle: 0,
  /** Reading a request head (or waiting for the first request): the head timeout runs. */
  Head: 1,
  /** Reading a request body. */
  Body: 2,
  /** The request is read; its response is being produced. */
  Waiting: 3,
  /** Closing or handed off: nothing more is read as HTTP. */
  Closing: 4,
} as const;
export type Phase = (typeof Phase)[keyof typeof Phase];

// After refusing a request or closing with a body unread, keep reading and
// dropping what the client still sends for this long after it last sent
// something, so it can read the answer before the close (nginx's lingering
// close), and never longer than LINGER_MAX_MS in all.
const LINGER_IDLE_MS = 2_000;
const LINGER_MAX_MS = 30_000;
const KEEPALIVE_GRACE_MS = 1_000;

/** A client connection speaking HTTP/1.x. */
export class H1ServerConnection implements RequestEvents, RequestConnection, ResponseConnection {
  readonly socket: Socket;
  /** This connection's place in its server's list. */
  entry: ListEntry<H1ServerConnection> | undefined;
  keepAlive = true;
  http10 = false;
  phase: Phase = Phase.Head;
  /** When the current phase began (ms since the epoch). */
  since = Date.now();
  readonly #host: ConnectionHost;
  readonly #parser: RequestParser;
  #req: H1Request | undefined;
  #res: H1Response | undefined;
  #stash: Buffer | undefined;
  #parsing = false;
  #responseFinished = false;
  #discard = false;
  #upgrade = false;
  #refused = false;
  #clientEnded = false;
  #pausedForBody = false;
  /** The request asked `Expect: 100-continue` for a body. */
  #awaitingContinue = false;
  /** Last body bytes while dropping an unread body (for the body idle timeout). */
  #lastBodyAt = 0;

  constructor(socket: Socket, host: ConnectionHost) {
    this.socket = socket;
    this.#host = host;
    this.#parser = new RequestParser(host.maxHeaderBytes, host.maxUriBytes);
    this.#parser.begin(this);
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
  }

  get awaitingContinue(): boolean {
    return this.#awaitingContinue && !this.#parser.done;
  }

  get keepAliveHint(): string {
    return this.#host.keepAliveHint;
  }

  /** No request is in progress and none is waiting: the connection may be closed without loss. */
  get idle(): boolean {
    return this.phase === Phase.Idle || (this.phase === Phase.Head && !this.#parser.started && this.#stash === undefined);
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.phase === Phase.Idle) {
      this.phase = Phase.Head;
      this.since = Date.now();
    }
    this.#feed(chunk);
  };

  #feed(data: Buffer): void {
    if (this.phase === Phase.Closing) return;
    let used: number;
    this.#parsing = true;
    try {
      used = this.#parser.execute(data);
    } catch (err) {
      this.#parsing = false;
      this.refuse(err instanceof RequestError ? err : new RequestError(400, (err as Error).message));
      return;
    }
    this.#parsing = false;
    if (this.#upgrade) {
      this.#handOff(used < data.length ? data.subarray(used) : Buffer.alloc(0));
      return;
    }
    if (this.socket.destroyed || (this.phase as Phase) === Phase.Closing) return;
    if (!this.#parser.done) return;
    if (used < data.length) {
      // The next request: kept until this response is finished.
      const rest = data.subarray(used);
      this.#stash = this.#stash === undefined ? rest : Buffer.concat([this.#stash, rest]);
      this.socket.pause();
    }
    if (this.#responseFinished) this.#next();
  }

  onHead(head: RequestHead): void {
    this.phase = head.hasBody ? Phase.Body : Phase.Waiting;
    this.keepAlive = head.keepAlive;
    this.http10 = head.minor === 0;
    this.#responseFinished = false;
    this.#discard = false;
    const req = new H1Request(this, head);
    this.#req = req;
    if (head.method === 'CONNECT') throw new RequestError(405, 'CONNECT is not supported');
    if (!head.hasBody && head.headers.upgrade !== undefined && commaTokens(head.headers.connection).includes('upgrade') && this.#host.shouldUpgrade(req)) {
      this.#upgrade = true;
      this.phase = Phase.Closing;
      return;
    }
    const res = new H1Response(this, head.method);
    this.#res = res;
    // RFC 9110 §10.1.1: an HTTP/1.0 request's expectation is ignored.
    const expect = head.minor === 1 ? head.headers.expect : undefined;
    if (expect !== undefined) {
      if (expect.toLowerCase() === '100-continue') {
        this.#awaitingContinue = head.hasBody;
        this.#host.checkContinue(req, res);
        return;
      }
      throw new RequestError(417, `expectation "${expect}" is not supported`);
    }
    this.#awaitingContinue = false;
    this.#host.request(req, res);
  }

  onBody(chunk: Buffer): void {
    if (this.#discard) {
      this.#lastBodyAt = Date.now();
      return;
    }
    if (!this.#req!.pushBody(chunk)) {
      this.#pausedForBody = true;
      this.socket.pause();
    }
  }

  onComplete(): void {
    // A request that is whole owes the consumer nothing more: a pause for its
    // backpressure ends here (the stream ends, so no read would lift it), and
    // the next request resumes the socket once this response is finished.
    this.#pausedForBody = false;
    const req = this.#req!;
    if (!req.complete) {
      if (this.#discard) req.complete = true;
      else req.endBody();
    }
    if (this.phase === Phase.Body) this.phase = Phase.Waiting;
  }

  resumeBody(): void {
    if (!this.#pausedForBody) return;
    this.#pausedForBody = false;
    if (this.phase === Phase.Body) this.socket.resume();
  }

  responseDone(res: H1Response, ok: boolean): void {
    if (res !== this.#res) return;
    if (!ok) {
      // Abandoned mid-response: only a broken connection tells the client.
      if (!this.#refused) this.socket.destroy();
      return;
    }
    this.#responseFinished = true;
    if (res.closesConnection) this.keepAlive = false;
    if (!this.#parser.done) {
      if (!this.keepAlive || this.#clientEnded) {
        this.#linger();
        return;
      }
      // Answered before the body was read (a 404 to a POST): drop the rest
      // of it, then carry on with the next request.
      this.#discard = true;
      this.#lastBodyAt = Date.now();
      this.#pausedForBody = false;
      this.socket.resume();
      return;
    }
    // Inside the parser (a reply written while the head was handled): #feed goes on.
    if (!this.#parsing) this.#next();
  }

  #next(): void {
    if (!this.keepAlive || this.#clientEnded) {
      this.#closeAfterResponse();
      return;
    }
    this.#req = undefined;
    this.#res = undefined;
    this.#responseFinished = false;
    this.#discard = false;
    this.phase = Phase.Idle;
    this.since = Date.now();
    this.#parser.begin(this);
    const stash = this.#stash;
    if (stash !== undefined) {
      this.#stash = undefined;
      this.phase = Phase.Head;
      this.#feed(stash);
    }
    if (this.#stash === undefined && !this.#pausedForBody && !this.socket.destroyed) this.socket.resume();
  }

  // Everything was read and answered: send FIN after the response, and close once it is out.
  #closeAfterResponse(): void {
    this.phase = Phase.Closing;
    const socket = this.socket;
    socket.end();
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  }

  // Close with request bytes still coming: FIN after the response, then read
  // and drop what arrives until the client stops, so its last writes are not
  // answered with a reset that could destroy the response before it is read.
  #linger(): void {
    this.phase = Phase.Closing;
    const socket = this.socket;
    this.#discard = true;
    this.#stash = undefined;
    socket.end();
    const started = Date.now();
    const close = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    const timer = setTimeout(close, LINGER_IDLE_MS);
    timer.unref();
    socket.on('data', () => {
      if (Date.now() - started < LINGER_MAX_MS) timer.refresh();
    });
    socket.once('end', close);
    socket.once('close', () => clearTimeout(timer));
    this.#pausedForBody = false;
    socket.resume();
  }

  /**
   * Answer `err.status` without the handler and close: after a malformed
   * request the server cannot tell where the next one would start
   * (RFC 9112 §9.3). Too late once a response is on its way: then the
   * connection is cut.
   */
  refuse(err: RequestError): void {
    if (this.phase === Phase.Closing && this.#refused) return;
    this.#refused = true;
    this.keepAlive = false;
    const req = this.#req;
    const res = this.#res;
    if (req !== undefined && !req.complete) req.destroy(err);
    if (res?.headersSent === true) {
      this.socket.destroy();
      return;
    }
    if (!this.socket.writable) {
      this.socket.destroy();
      return;
    }
    this.#host.refused(err.status, err, this.socket);
    const status = err.status;
    const reason = STATUS_CODES[status] ?? '';
    const body = `${status} ${reason}\n`;
    this.socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\n` +
      `content-length: ${body.length}\r\n\r\n${body}`,
      'latin1',
    );
    // A response the handler was producing is abandoned; its writes go nowhere.
    res?.destroy();
    this.#linger();
  }

  #handOff(head: Buffer): void {
    const socket = this.socket;
    socket.off('data', this.#onData);
    socket.off('end', this.#onEnd);
    socket.off('error', this.#onError);
    socket.off('close', this.#onClose);
    // Stop the flow until the new owner reads (as node:http): bytes arriving
    // before it attaches its listener would otherwise be dropped.
    (socket as { readableFlowing: boolean | null }).readableFlowing = null;
    this.#host.forget(this);
    this.#host.upgrade(this.#req!, socket, head);
  }

  readonly #onEnd = (): void => {
    this.#clientEnded = true;
    if (this.phase === Phase.Closing) return;
    if (this.idle) {
      this.socket.destroy();
      return;
    }
    this.keepAlive = false;
    if (this.phase === Phase.Head || this.phase === Phase.Body) {
      // The request will never be complete: there is nothing to answer.
      this.#req?.destroy(abortedError());
      if (this.#res === undefined || !this.#res.headersSent) this.socket.destroy();
    }
  };

  readonly #onError = (): void => {
    this.socket.destroy();
  };

  readonly #onClose = (): void => {
    this.phase = Phase.Closing;
    this.#host.forget(this);
    const req = this.#req;
    if (req !== undefined && !req.complete && !req.destroyed) req.destroy(abortedError());
    const res = this.#res;
    if (res !== undefined && !res.destroyed) res.destroy();
  };

  /** Apply the timeouts at `now`; called by the server's sweep. */
  check(now: number, timeouts: ConnectionTimeouts): void {
    switch (this.phase) {
      case Phase.Idle:
        // As node:http: a second past the advertised `timeout=`, so a client
        // reusing the connection right at that limit does not race the close.
        if (timeouts.keepAliveMs > 0 && now - this.since >= timeouts.keepAliveMs + KEEPALIVE_GRACE_MS) this.socket.destroy();
        return;
      case Phase.Head:
        if (timeouts.headersMs > 0 && now - this.since >= timeouts.headersMs) this.refuse(new RequestError(408, 'request head not received in time'));
        return;
      case Phase.Body:
        if (timeouts.requestMs > 0 && now - this.since >= timeouts.requestMs) this.refuse(new RequestError(408, 'request not received in time'));
        // The rest of a body nobody reads: a client gone silent is not waited for.
        else if (this.#discard && timeouts.bodyIdleMs > 0 && now - this.#lastBodyAt >= timeouts.bodyIdleMs) this.socket.destroy();
        return;
      default:
    }
  }
}
