// Which Ingresses are ours. An Ingress that belongs to another controller is
// none of our business: it produces no route, no status and no failure.
import type { Ingress, IngressClass } from './types.ts';
import { indexByName } from './meta.ts';

/** Legacy class annotation, still common in the wild. */
export const LEGACY_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';
/** Marks the IngressClass that class-less Ingresses belong to. */
export const DEFAULT_CLASS_ANNOTATION = 'ingressclass.kubernetes.io/is-default-class';

/** The settings class selection depends on. */
export interface ClassOptions {
  readonly controllerName: string;
  readonly ingressClassName?: string | undefined;
  readonly watchIngressWithoutClass?: boolean | undefined;
}

/** Decides ownership of Ingresses against one set of IngressClasses. */
export interface ClassSelector {
  /** Whether the Ingress is ours. */
  owns(ingress: Ingress): boolean;
}

/**
 * Build a selector. Rules, in order:
 * 1. `spec.ingressClassName` set: ours iff that class name is ours.
 * 2. else the `kubernetes.io/ingress.class` annotation set: ours iff that class name is ours.
 * 3. else ours iff one of our IngressClasses is marked default, or `watchIngressWithoutClass`.
 *
 * A class name is ours when its IngressClass names our controller (and, if
 * `ingressClassName` is configured, it is that name), or when no IngressClass
 * of that name exists and it equals the configured `ingressClassName`.
 */
export function classSelector(classes: readonly IngressClass[], opts: ClassOptions): ClassSelector {
  const byName = indexByName(classes, (k) => k.name);
  const isOurs = (name: string): boolean => {
    const cls = byName.get(name);
    if (cls) {
      return cls.spec?.controller === opts.controllerName
        && (opts.ingressClassName === undefined || name === opts.ingressClassName);
    }
    return name === opts.ingressClassName;
  };
  let defaultIsOurs = opts.watchIngressWithoutClass === true;
  for (const [name, cls] of byName) {
    if (cls.metadata?.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true' && isOurs(name)) defaultIsOurs = true;
  }
  return {
    owns(ingress) {
      const specClass = ingress.spec?.ingressClassName;
      if (specClass) return isOurs(specClass);
      const annotated = ingress.metadata?.annotations?.[LEGACY_CLASS_ANNOTATION];
      if (annotated) return isOurs(annotated);
      return defaultIsOurs;
    },
  };
}
