// Which Ingresses and Routes are ours. An object that belongs to another
// controller is none of our business: it produces no route, no status and no failure.
import type { Ingress, IngressClass, RouteObject } from './types.ts';
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

/** Decides ownership of Ingresses and Routes against one set of IngressClasses. */
export interface ClassSelector {
  /** Whether the Ingress is ours. */
  owns(ingress: Ingress): boolean;
  /**
   * Whether the Route is ours: by `spec.ingressClassName` like an Ingress,
   * with no legacy annotation. Read before the spec is validated, so a value
   * that is not a string counts as absent: it names no class, and the Route
   * is then ours only where class-less Routes are, which reports the bad
   * spec to its owner without claiming another controller's objects.
   */
  ownsRoute(route: RouteObject): boolean;
}

/**
 * Build a selector. Rules, in order:
 * 1. `spec.ingressClassName` set: ours iff that class name is ours.
 * 2. else the `kubernetes.io/ingress.class` annotation set: ours iff that class name is ours.
 * 3. else ours iff one of our IngressClasses is marked default, or `watchIngressWithoutClass`.
 * Routes follow rules 1 and 3.
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
    ownsRoute(route) {
      const spec = route.spec;
      const specClass = spec !== null && typeof spec === 'object' ? (spec as { ingressClassName?: unknown }).ingressClassName : undefined;
      if (typeof specClass === 'string' && specClass !== '') return isOurs(specClass);
      return defaultIsOurs;
    },
  };
}
