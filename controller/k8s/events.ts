/**
 * Warning Events for translation failures, deduplicated.
 *
 * A failure that persists is reported once, not on every rebuild (a busy
 * cluster rebuilds many times a minute). It is reported again when it
 * disappears and comes back, when its message changes, or after `repeatAfterMs`
 * as a reminder, so `kubectl describe` keeps showing a live problem after the
 * API server's one-hour event TTL.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';

/** The object an Event is about. */
export interface EventTarget {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
}

/** One Warning to report. */
export interface WarningEvent {
  target: EventTarget;
  /** Machine-readable PascalCase reason, e.g. `ServiceNotFound`. */
  reason: string;
  message: string;
}

export class EventRecorder {
  readonly #api: CoreV1Api;
  readonly #component: string;
  readonly #instance: string;
  readonly #log: Logger;
  readonly #repeatAfterMs: number;
  /** key → when it was last emitted. */
  #emitted = new Map<string, number>();

  constructor(kc: KubeConfig, component: string, instance: string, log: Logger, repeatAfterMs = 30 * 60_000) {
    this.#api = kc.makeApiClient(CoreV1Api);
    this.#component = component;
    this.#instance = instance;
    this.#log = log;
    this.#repeatAfterMs = repeatAfterMs;
  }

  /**
   * Report the current set of warnings. Warnings absent from `current` are
   * forgotten, so they are reported afresh if they come back.
   */
  async sync(current: readonly WarningEvent[], now = Date.now()): Promise<void> {
    const next = new Map<string, number>();
    const toSend: WarningEvent[] = [];
    for (const w of current) {
      const key = `${w.target.kind}/${w.target.namespace}/${w.target.name}/${w.target.uid ?? ''}|${w.reason}|${w.message}`;
      if (next.has(key)) continue;
      const last = this.#emitted.get(key);
      if (last !== undefined && now - last < this.#repeatAfterMs) {
        next.set(key, last);
        continue;
      }
      next.set(key, now);
      toSend.push(w);
    }
    this.#emitted = next;
    await Promise.all(toSend.map((w) => this.#send(w, now)));
  }

  async #send(w: WarningEvent, now: number): Promise<void> {
    const t = new Date(now);
    try {
      await this.#api.createNamespacedEvent({
        namespace: w.target.namespace,
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { generateName: `${w.target.name}.`, namespace: w.target.namespace },
          involvedObject: {
            apiVersion: w.target.apiVersion,
            kind: w.target.kind,
            namespace: w.target.namespace,
            name: w.target.name,
            uid: w.target.uid,
            resourceVersion: w.target.resourceVersion,
          },
          type: 'Warning',
          reason: w.reason,
          message: w.message.slice(0, 1024),
          count: 1,
          firstTimestamp: t,
          lastTimestamp: t,
          source: { component: this.#component },
          reportingComponent: this.#component,
          reportingInstance: this.#instance,
        },
      });
    } catch (err) {
      // Forget it so the next sync retries.
      for (const [k, v] of this.#emitted) if (v === now && k.startsWith(`${w.target.kind}/${w.target.namespace}/${w.target.name}/`)) this.#emitted.delete(k);
      this.#log.warn({ err: (err as Error).message, reason: w.reason, object: `${w.target.namespace}/${w.target.name}` }, 'could not record event');
    }
  }
}
