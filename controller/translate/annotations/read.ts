// Reading an Ingress's annotations under both prefixes. Every read goes
// through here so the failure lands on the key that was actually used, and so
// every annotation present is either translated, or reported: never ignored
// in silence.
import type { FailureList } from '../failures.ts';
import type { ObjectRef } from '../types.ts';
import { ANNOTATIONS, NGINX_PREFIX, PYSERVE_PREFIX } from './catalog.ts';

/** One annotation present on the object: the key used and its value. */
interface Present {
  readonly key: string;
  readonly value: string;
}

/** `metadata.annotations["<key>"]`, the field a failure about one annotation names. */
export function annotationField(key: string): string {
  return `metadata.annotations[${JSON.stringify(key)}]`;
}

/**
 * The PyServe-relevant annotations of one object, by name without prefix.
 * When a name is set under both prefixes, `pyserve.io/` wins: it lets a
 * cluster running both controllers give PyServe a different value.
 */
export class AnnotationReader {
  readonly #present = new Map<string, Present>();
  readonly #shadowed = new Map<string, string>();
  readonly #ref: ObjectRef;
  readonly #failures: FailureList;

  constructor(annotations: Readonly<Record<string, string>> | null | undefined, ref: ObjectRef, failures: FailureList) {
    this.#ref = ref;
    this.#failures = failures;
    const entries = annotations && typeof annotations === 'object' ? Object.entries(annotations) : [];
    for (const [key, value] of entries) {
      if (typeof value !== 'string') continue;
      const name = key.startsWith(PYSERVE_PREFIX) ? key.slice(PYSERVE_PREFIX.length) : key.startsWith(NGINX_PREFIX) ? key.slice(NGINX_PREFIX.length) : undefined;
      if (name === undefined || name === '') continue;
      const prev = this.#present.get(name);
      if (prev === undefined || key.startsWith(PYSERVE_PREFIX)) {
        if (prev !== undefined) this.#shadowed.set(name, prev.key);
        this.#present.set(name, { key, value });
      } else {
        this.#shadowed.set(name, key);
      }
    }
  }

  /** Whether the annotation is set under either prefix. */
  has(name: string): boolean {
    return this.#present.has(name);
  }

  /** The value, under whichever prefix wins; undefined when unset. */
  get(name: string): string | undefined {
    return this.#present.get(name)?.value;
  }

  /** The key of the annotation as set (for failure fields and messages). */
  key(name: string): string {
    return this.#present.get(name)?.key ?? `${NGINX_PREFIX}${name}`;
  }

  /** The failure field of an annotation. */
  field(name: string): string {
    return annotationField(this.key(name));
  }

  /** Report an unusable value; `effect` says what PyServe does instead. */
  invalid(name: string, message: string, effect: string): void {
    this.#failures.add(this.#ref, this.field(name), 'InvalidAnnotation', `${message}; ${effect}`);
  }

  /** Report a valid annotation that has no effect here, and why. */
  ignored(name: string, why: string): void {
    this.#failures.add(this.#ref, this.field(name), 'IgnoredAnnotation', `${this.key(name)} is ignored: ${why}`);
  }

  /** Names set, in code-unit order. */
  names(): string[] {
    return [...this.#present.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** The first access-control annotation set (non-empty) that PyServe cannot enforce, if any. */
  failClosed(): string | undefined {
    return this.names().find((n) => ANNOTATIONS[n]?.failClosed === true && this.get(n)!.trim() !== '');
  }

  /**
   * One UnsupportedAnnotation per unsupported or unknown key, under either
   * prefix (a shadowed nginx key of an unsupported name is reported too:
   * ingress-nginx would still apply it during a side-by-side migration).
   */
  reportUnsupported(): void {
    for (const name of this.names()) {
      const info = ANNOTATIONS[name];
      if (info !== undefined && info.support !== 'unsupported') continue;
      const present = this.#present.get(name)!;
      const keys = [present.key, ...(this.#shadowed.has(name) ? [this.#shadowed.get(name)!] : [])];
      for (const key of keys) {
        const message = info === undefined
          ? `${key} is not an annotation PyServe knows (${key.startsWith(PYSERVE_PREFIX) ? 'a typo?' : 'a typo, or one from a newer ingress-nginx?'}); it has no effect`
          : info.failClosed === true && present.value.trim() !== ''
            ? `${key} is not supported: ${info.note}; this Ingress's paths answer 503 rather than being served without the access control it asks for`
            : `${key} is not supported: ${info.note}; it has no effect`;
        this.#failures.add(this.#ref, annotationField(key), 'UnsupportedAnnotation', message);
      }
    }
  }
}
