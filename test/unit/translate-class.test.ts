import { describe, expect, it } from 'vitest';
import { classSelector } from '../../controller/translate/ingress-class.ts';
import type { ClassOptions } from '../../controller/translate/ingress-class.ts';
import type { Ingress, IngressClass } from '../../controller/translate/types.ts';

const ME = 'pyserve.io/ingress-controller';
const cls = (name: string, controller: string, isDefault = false): IngressClass => ({
  metadata: { name, ...(isDefault ? { annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } } : {}) },
  spec: { controller },
});
const ing = (spec?: string, annotation?: string): Ingress => ({
  metadata: { name: 'i', ...(annotation !== undefined ? { annotations: { 'kubernetes.io/ingress.class': annotation } } : {}) },
  spec: spec !== undefined ? { ingressClassName: spec } : {},
});

describe('classSelector', () => {
  const ours = cls('pyserve', ME);
  const nginx = cls('nginx', 'k8s.io/ingress-nginx');
  it.each<[string, IngressClass[], Partial<ClassOptions>, Ingress, boolean]>([
    ['spec names our class', [ours, nginx], {}, ing('pyserve'), true],
    ['spec names another controller class', [ours, nginx], {}, ing('nginx'), false],
    ['spec names a missing class', [ours], {}, ing('ghost'), false],
    ['spec names the configured class with no object', [], { ingressClassName: 'fixed' }, ing('fixed'), true],
    ['spec names the configured class owned by another controller', [cls('fixed', 'x/y')], { ingressClassName: 'fixed' }, ing('fixed'), false],
    ['spec names our class that is not the configured one', [ours, cls('other', ME)], { ingressClassName: 'other' }, ing('pyserve'), false],
    ['spec wins over the annotation', [ours, nginx], {}, ing('nginx', 'pyserve'), false],
    ['empty spec falls back to the annotation', [ours], {}, ing('', 'pyserve'), true],
    ['annotation names our class', [ours], {}, ing(undefined, 'pyserve'), true],
    ['annotation names another class', [ours, nginx], {}, ing(undefined, 'nginx'), false],
    ['annotation names the configured class', [], { ingressClassName: 'legacy' }, ing(undefined, 'legacy'), true],
    ['annotation names an unknown class', [ours], {}, ing(undefined, 'ghost'), false],
    ['no class, no default', [ours, nginx], {}, ing(), false],
    ['no class, our class is default', [cls('pyserve', ME, true)], {}, ing(), true],
    ['no class, default belongs to another controller', [ours, cls('nginx', 'k8s.io/ingress-nginx', true)], {}, ing(), false],
    ['no class, our default class is not the configured one', [cls('pyserve', ME, true)], { ingressClassName: 'other' }, ing(), false],
    ['no class, watchIngressWithoutClass', [], { watchIngressWithoutClass: true }, ing(), true],
    ['controller name is configurable', [cls('c', 'example.com/custom')], { controllerName: 'example.com/custom' }, ing('c'), true],
  ])('%s', (_title, classes, opts, ingress, expected) => {
    expect(classSelector(classes, { controllerName: ME, ...opts }).owns(ingress)).toBe(expected);
  });

  it('ignores a default-class annotation that is not exactly "true"', () => {
    const c: IngressClass = { metadata: { name: 'pyserve', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'True' } }, spec: { controller: ME } };
    expect(classSelector([c], { controllerName: ME }).owns(ing())).toBe(false);
  });
});
