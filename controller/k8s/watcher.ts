/**
 * A list-watch over one resource type, in all namespaces or in a given list,
 * built on @kubernetes/client-node's informer (ListWatch).
 *
 * The library's informer stops for good on a non-timeout error (a 5xx, a
 * dropped connection during list, RBAC being fixed later); here it is
 * restarted with capped exponential backoff, keeping its cache, so the
 * controller keeps serving what it last knew while the API server is away.
 * The cap is low (MAX_RETRY_DELAY_MS) so that after an outage of any length
 * the controller resyncs within a few seconds of the API server's return
 * (test/integration/controller-outage.test.ts).
 */
import { ListWatch, Watch } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';

/** How to list and watch one resource type. */
export interface ResourceSpec<T extends KubernetesObject> {
  /** Kind, for logs. */
  kind: string;
  /** API path of the collection, e.g. `/apis/networking.k8s.io/v1` + `/ingresses`. */
  path(namespace: string | undefined): string;
  /** List call with the same scope as `path`. */
  list(namespace: string | undefined): Promise<KubernetesListObject<T>>;
  /** Optional field selector, e.g. `type=kubernetes.io/tls` for Secrets. */
  fieldSelector?: string;
  labelSelector?: string;
  /**
   * Count a 404 on list as synced-and-empty. For optional CRDs: a cluster
   * without them must still get its Ingresses served; the watch keeps
   * retrying and picks the objects up once the CRD is installed.
   */
  notFoundIsEmpty?: boolean;
}

export type WatchEvent = 'add' | 'update' | 'delete';

/** First retry delay after a failure. */
const INITIAL_RETRY_DELAY_MS = 200;
/**
 * Retry delay cap, and so the longest the controller can take to notice that
 * the API server is back. Each informer costs one cheap failed request per
 * cap while the server is down.
 */
const MAX_RETRY_DELAY_MS = 5_000;
/** A watch that stayed up this long was healthy: its next failure starts the backoff over. */
const HEALTHY_AFTER_MS = 10_000;

export class ResourceWatcher<T extends KubernetesObject> {
  readonly spec: ResourceSpec<T>;
  readonly #informers: ListWatch<T>[] = [];
  readonly #log: Logger;
  #stopped = false;

  constructor(
    kc: KubeConfig,
    spec: ResourceSpec<T>,
    namespaces: readonly string[] | undefined,
    onEvent: (event: WatchEvent, obj: T) => void,
    log: Logger,
  ) {
    this.spec = spec;
    this.#log = log.child({ kind: spec.kind });
    const scopes = namespaces?.length ? namespaces : [undefined];
    for (const ns of scopes) {
      const informer = new ListWatch<T>(spec.path(ns), new Watch(kc), () => spec.list(ns), false, spec.labelSelector, spec.fieldSelector);
      informer.on('add', (o) => onEvent('add', o));
      informer.on('update', (o) => onEvent('update', o));
      informer.on('delete', (o) => onEvent('delete', o));
      this.#informers.push(informer);
    }
  }

  /**
   * Start every informer and resolve once each completed its initial list.
   * Errors before that point retry with backoff too: the controller must not
   * build from a partial view, so it waits rather than fail.
   */
  async start(): Promise<void> {
    await Promise.all(this.#informers.map((inf) => this.#startOne(inf)));
  }

  #startOne(informer: ListWatch<T>): Promise<void> {
    return new Promise<void>((resolveSynced) => {
      let delay = INITIAL_RETRY_DELAY_MS;
      let synced = false;
      let failedThisAttempt = false;
      /** When the last attempt got its list and watch through; undefined after a failure. */
      let upSince: number | undefined;
      const attempt = async () => {
        if (this.#stopped) return resolveSynced();
        failedThisAttempt = false;
        try {
          await informer.start();
        } catch (err) {
          // Some failures surface as a rejection rather than an error callback; treat them alike.
          informer.stop().catch(() => undefined);
          onError(err);
          return;
        }
        // start() resolves once the watch request is answered (or after an error callback); only a clean start counts.
        if (failedThisAttempt) return;
        upSince = performance.now();
        if (!synced) {
          synced = true;
          resolveSynced();
        }
      };
      const onError = (err: unknown) => {
        failedThisAttempt = true;
        if (this.#stopped) return;
        if (!synced && this.spec.notFoundIsEmpty && errorCode(err) === 404) {
          synced = true;
          this.#log.warn('not served by the API server (is its CRD installed?); treating as empty and retrying');
          resolveSynced();
        }
        // Back off over consecutive failures (an outage, a flapping server); a failure after
        // a healthy stretch retries quickly. Not reset on the informer's 'connect' event:
        // client-node emits it at the start of every attempt, before anything succeeded.
        if (upSince !== undefined && performance.now() - upSince >= HEALTHY_AFTER_MS) delay = INITIAL_RETRY_DELAY_MS;
        upSince = undefined;
        this.#log.warn({ err: describe(err), retryInMs: delay }, 'watch failed; restarting');
        const wait = delay;
        delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
        setTimeout(() => void attempt(), wait).unref();
      };
      informer.on('error', onError);
      void attempt();
    });
  }

  /** Every cached object across the watched namespaces. */
  list(): T[] {
    return this.#informers.flatMap((inf) => [...inf.list()]);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#informers.map((inf) => inf.stop()));
  }
}

function errorCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | null;
  const c = e?.code ?? e?.statusCode;
  return typeof c === 'number' ? c : undefined;
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object' && 'code' in err) return `code ${String((err as { code: unknown }).code)}`;
  return String(err);
}
