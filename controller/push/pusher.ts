/**
 * Delivers snapshots to dataplane admin endpoints.
 *
 * Every target is handled independently and concurrently: one slow or broken
 * pod must never hold back the others. Before sending a (possibly large)
 * snapshot, the pusher asks the target what it has; equal hashes mean there is
 * nothing to do. A pod that restarted empty answers 404 and gets the snapshot
 * again, which is how callers that re-run {@link Pusher.push} periodically recover it. A target that
 * already serves the snapshot's routing gets the routing section as just its
 * hash (an endpoints change at 10k Ingresses is then a fraction of the 14 MB
 * body); should it answer 400 (its routing changed meanwhile, or it predates
 * such pushes), it gets the whole snapshot.
 */
import { Agent, request } from 'undici';
import type { Snapshot } from '../../dataplane/snapshot/schema.ts';

/** A dataplane admin endpoint. */
export interface PushTarget {
  /** Stable identity used in logs and metrics, e.g. the pod name or `host:port`. */
  id: string;
  /** Base URL of the admin listener, e.g. `http://10.0.0.7:9901`. */
  url: string;
}

/** What happened to one target in one push. */
export type PushOutcome = 'applied' | 'unchanged' | 'rejected' | 'unreachable';

/** Per-target result of {@link Pusher.push}. */
export interface PushResult {
  target: string;
  outcome: PushOutcome;
  /** Generation the target reports after the push (absent when unreachable). */
  generation?: number;
  /** Problems reported by the dataplane when it rejected the snapshot. */
  problems?: string[];
  /** Last transport or HTTP error when unreachable. */
  error?: string;
  /** Number of HTTP attempts made, including the state check. */
  attempts: number;
  /** Applied with the routing section sent as just its hash (the target already served it). */
  routingOmitted?: true;
}

/** Options of {@link Pusher}. */
export interface PusherOptions {
  /** Bearer token the dataplanes expect on the admin API. */
  token: string;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Attempts per target before it is reported unreachable. */
  maxAttempts?: number;
  /** First retry delay; doubles per attempt, with jitter, capped at 5 s. */
  backoffMs?: number;
}

/** The bodies of one push, each made once when first needed: the whole snapshot, and the one with the routing as its hash. */
interface Bodies {
  full: () => string;
  slim: () => string;
}

interface TargetState {
  generation: number;
  routingHash: string;
  endpointsHash: string;
}

/** Pushes snapshots to a set of dataplane targets. */
export class Pusher {
  #targets: PushTarget[] = [];
  readonly #opts: Required<PusherOptions>;
  readonly #agent: Agent;

  constructor(opts: PusherOptions) {
    this.#opts = { timeoutMs: 10_000, maxAttempts: 5, backoffMs: 100, ...opts };
    this.#agent = new Agent({ connections: 2, headersTimeout: this.#opts.timeoutMs, bodyTimeout: this.#opts.timeoutMs });
  }

  /** Replace the target set; takes effect on the next push. */
  setTargets(targets: readonly PushTarget[]): void {
    this.#targets = [...targets];
  }

  get targets(): readonly PushTarget[] {
    return this.#targets;
  }

  /** Push `snapshot` to every target concurrently. Never throws for a target failure. */
  async push(snapshot: Snapshot, signal?: AbortSignal): Promise<PushResult[]> {
    // Lazily: when every target already serves the routing, the whole body
    // (14 MB at 10k Ingresses) is never serialized.
    let full: string | undefined;
    let slim: string | undefined;
    const bodies: Bodies = {
      full: () => (full ??= JSON.stringify(snapshot)),
      slim: () => (slim ??= JSON.stringify({ ...snapshot, routing: { hash: snapshot.routing.hash } })),
    };
    return Promise.all(this.#targets.map((t) => this.#pushOne(t, snapshot, bodies, signal)));
  }

  /** Close the HTTP connections kept to the targets. */
  async close(): Promise<void> {
    await this.#agent.close();
  }

  async #pushOne(target: PushTarget, snapshot: Snapshot, bodies: Bodies, signal?: AbortSignal): Promise<PushResult> {
    let attempts = 0;
    let lastError = '';
    for (let attempt = 0; attempt < this.#opts.maxAttempts; attempt++) {
      if (attempt > 0) await sleep(backoff(this.#opts.backoffMs, attempt), signal);
      if (signal?.aborted) break;
      try {
        attempts++;
        const state = await this.#getState(target, signal);
        if (state && state.routingHash === snapshot.routing.hash && state.endpointsHash === snapshot.endpoints.hash) {
          return { target: target.id, outcome: 'unchanged', generation: state.generation, attempts };
        }
        let omitted = state?.routingHash === snapshot.routing.hash;
        attempts++;
        let { status, text } = await this.#put(target, omitted ? bodies.slim() : bodies.full(), signal);
        if (omitted && status === 400) {
          omitted = false;
          attempts++;
          ({ status, text } = await this.#put(target, bodies.full(), signal));
        }
        if (status === 200) {
          const parsed = JSON.parse(text) as { generation?: number };
          return { target: target.id, outcome: 'applied', generation: parsed.generation ?? snapshot.generation, attempts, ...(omitted && { routingOmitted: true as const }) };
        }
        if (status === 400 || status === 413) {
          // The dataplane judged the content; sending it again cannot help.
          let problems: string[] = [text];
          try {
            const parsed = JSON.parse(text) as { problems?: string[]; error?: string };
            problems = parsed.problems ?? [parsed.error ?? text];
          } catch {
            // Non-JSON body: keep the raw text as the single problem.
          }
          return { target: target.id, outcome: 'rejected', problems, attempts };
        }
        lastError = `HTTP ${status}: ${text.slice(0, 200)}`;
      } catch (err) {
        lastError = (err as Error).message;
      }
    }
    return { target: target.id, outcome: 'unreachable', error: lastError, attempts };
  }

  async #put(target: PushTarget, body: string, signal?: AbortSignal): Promise<{ status: number; text: string }> {
    const res = await request(new URL('/v1/snapshot', target.url), {
      method: 'PUT',
      dispatcher: this.#agent,
      headers: { authorization: `Bearer ${this.#opts.token}`, 'content-type': 'application/json' },
      body,
      signal,
    });
    return { status: res.statusCode, text: await res.body.text() };
  }

  /** Current state of a target, or undefined when it has no snapshot yet. */
  async #getState(target: PushTarget, signal?: AbortSignal): Promise<TargetState | undefined> {
    const res = await request(new URL('/v1/snapshot', target.url), {
      method: 'GET',
      dispatcher: this.#agent,
      headers: { authorization: `Bearer ${this.#opts.token}` },
      signal,
    });
    const text = await res.body.text();
    if (res.statusCode === 404) return undefined;
    if (res.statusCode !== 200) throw new Error(`GET /v1/snapshot: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
    return JSON.parse(text) as TargetState;
  }
}

function backoff(base: number, attempt: number): number {
  const exp = Math.min(5_000, base * 2 ** (attempt - 1));
  // Jitter spreads retries of many controllers hitting a recovering pod.
  return exp / 2 + Math.random() * (exp / 2);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
