// Shapes of the per-route middleware chain. Hooks are plain functions chosen
// when a snapshot is compiled; the request path only calls what a route has.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import type { RequestContext } from '../server/context.ts';

/**
 * The request as hooks see it: an HTTP/1.1 `IncomingMessage` or an HTTP/2
 * compatibility request, both readable streams of the body.
 */
export type RequestLike = Readable & RequestHeadLike;

/** What head-only hooks look at (an upgrade request has no body stream to offer). */
export interface RequestHeadLike {
  readonly headers: IncomingHttpHeaders;
  readonly method?: string | undefined;
}

/** A short-circuit answer from a request hook. */
export interface LocalReply {
  readonly status: number;
  readonly reason: string;
  /**
   * Close the connection after the reply: the request body was not read, so
   * the next request's start on this connection is unknown.
   */
  readonly close: boolean;
}

/** Checks a request before it goes upstream; a reply ends it there. */
export type RequestHook = (req: RequestHeadLike, ctx: RequestContext) => LocalReply | undefined;

/** Wraps the request body on its way upstream (size limits, idle timeouts). */
export type RequestBodyHook = (req: RequestLike, body: Readable) => Readable;

/** The upstream response head as the client will get it; hooks edit `headers` in place. */
export interface ResponseHead {
  readonly status: number;
  readonly headers: OutgoingHttpHeaders;
}

/**
 * Sees the upstream response head before it is written to the client. May
 * edit the headers and return a transform the body then flows through.
 */
export type ResponseHook = (req: RequestHeadLike, head: ResponseHead) => Transform | undefined;
