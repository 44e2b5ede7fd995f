// One HTTP/1.1 request to an upstream over undici's dispatch API. The
// response body is written straight into the sink the caller picks (the
// client response, or the first of its transforms) chunk by chunk, with
// undici paused while the sink is full: no intermediate Readable, no
// promise, no pipeline per request — that cost the hot path about a third
// of its throughput with `pool.request()`.
import type { IncomingHttpHeaders } from 'node:http';
import type { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';

/** What the caller does at each step of an exchange. */
export interface ExchangeCallbacks {
  /**
   * The final response head arrived (1xx are skipped). Return the stream the
   * body goes to, or null to drop the response (the exchange then ends with
   * no further callback).
   */
  onHead(status: number, headers: IncomingHttpHeaders): Writable | null;
  /** The whole body was written to the sink, and the sink ended. */
  onEnd(): void;
  /** The exchange failed: before the head (`head`), or while the body streamed (`body`). */
  onError(err: Error, phase: 'head' | 'body'): void;
}

/** A started exchange. */
export interface Exchange {
  /** Abort it; `onError` follows unless it already ended. */
  abort(reason: Error): void;
}

type Controller = Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestStart']>>[0];

class ProxyHandler implements Dispatcher.DispatchHandler, Exchange {
  readonly #cb: ExchangeCallbacks;
  #controller: Controller | undefined;
  #abortReason: Error | undefined;
  #sink: Writable | undefined;
  #ended = false;

  constructor(cb: ExchangeCallbacks) {
    this.#cb = cb;
  }

  abort(reason: Error): void {
    if (this.#ended) return;
    this.#abortReason ??= reason;
    this.#controller?.abort(reason);
  }

  onRequestStart(controller: Controller): void {
    this.#controller = controller;
    if (this.#abortReason !== undefined) controller.abort(this.#abortReason);
  }

  onResponseStart(controller: Controller, status: number, headers: IncomingHttpHeaders): void {
    if (status < 200 || this.#ended) return;
    const sink = this.#cb.onHead(status, headers);
    if (sink === null) {
      this.#ended = true;
      controller.abort(new Error('response dropped'));
      return;
    }
    this.#sink = sink;
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    const sink = this.#sink;
    if (sink === undefined || this.#ended) return;
    if (!sink.write(chunk)) {
      controller.pause();
      sink.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#sink?.end();
    this.#cb.onEnd();
  }

  onResponseError(_controller: Controller, err: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#cb.onError(err, this.#sink === undefined ? 'head' : 'body');
  }
}

/** Start one exchange on `dispatcher` (a Pool). */
export function startExchange(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, cb: ExchangeCallbacks): Exchange {
  const handler = new ProxyHandler(cb);
  dispatcher.dispatch(options, handler);
  return handler;
}
