// Request mirroring: a sampled copy of a request goes to another cluster and
// its response is thrown away. Nothing here can delay or fail the client's
// exchange: the copy is dispatched after the main one, its errors are only
// counted, and it has its own timeouts.
import type { CompiledUpstreams, ForwardPlan } from '../config/compile.ts';
import type { DataplaneMetrics } from '../observability/metrics.ts';
import type { PickInput } from './cluster-balancer.ts';
import type { PoolRegistry } from './pool.ts';
import { Writable } from 'node:stream';

/** A sink that drops the mirror's response body as it arrives, so its connection can be reused. */
function discard(): Writable {
  return new Writable({ write: (_chunk, _enc, done) => done() });
}

/** The request as it is sent upstream, reused for its copies. */
export interface MirroredRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: string[];
  /** The body when it was kept in memory; null for none. */
  readonly body: Buffer | null;
  /** The request has a body that was streamed, not kept: it cannot be copied. */
  readonly bodyStreamed: boolean;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
}

/** Send copies of a request to the plan's mirrors, each with its own sampling. */
export function sendMirrors(plan: ForwardPlan, upstreams: CompiledUpstreams, input: PickInput, request: MirroredRequest, pools: PoolRegistry, metrics: DataplaneMetrics): void {
  for (const mirror of plan.mirrors) {
    if (mirror.percent < 100 && Math.random() * 100 >= mirror.percent) continue;
    const outcome = (o: 'sent' | 'failed' | 'skipped'): void => metrics.mirrors.inc({ cluster: mirror.cluster, outcome: o });
    const balancer = upstreams.get(mirror.cluster);
    const member = balancer?.pick(input);
    // Only HTTP/1.1 mirrors, and only bodies kept in memory (a streamed body is read once, by the main request).
    if (member === undefined || request.bodyStreamed || (balancer!.protocol !== 'http' && balancer!.protocol !== 'https')) {
      outcome('skipped');
      continue;
    }
    const pool = pools.get(member.endpoint, request.connectTimeoutMs, balancer!.protocol === 'https');
    pool.exchange({
      method: request.method,
      path: request.path,
      headers: request.headers,
      body: request.body,
      headersTimeout: request.responseTimeoutMs,
      bodyTimeout: request.responseTimeoutMs,
    }, {
      onHead: () => {
        outcome('sent');
        return discard();
      },
      onEnd: () => undefined,
      onError: (_err, phase) => {
        if (phase === 'head') outcome('failed');
      },
    });
  }
}
