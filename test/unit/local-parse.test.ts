import { describe, expect, it } from 'vitest';
import { parseManifestFile } from '../../controller/local/parse-manifests.ts';

const svc = (extra = '') => `apiVersion: v1
kind: Service
metadata:
  name: web
${extra}spec:
  ports:
    - name: http
      port: 80
`;

describe('parseManifestFile', () => {
  it('reads several documents and defaults the namespace', () => {
    const r = parseManifestFile('a.yaml', `${svc()}---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: pyserve
  namespace: other
spec:
  controller: pyserve.io/ingress-controller
`);
    expect(r.problems).toEqual([]);
    expect(r.objects.map((o) => [o.object.kind, o.object.metadata.namespace, o.line])).toEqual([
      ['Service', 'default', 1],
      ['IngressClass', 'other', 10],
    ]);
  });

  it('reports YAML syntax errors with their line', () => {
    const r = parseManifestFile('bad.yaml', 'apiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed\n');
    expect(r.objects).toEqual([]);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ file: 'bad.yaml', message: expect.stringMatching(/^YAML syntax/) });
    expect(r.problems[0]!.line).toBeGreaterThanOrEqual(4);
  });

  it('locates a schema problem at the offending field', () => {
    const text = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  rules:
    - http:
        paths:
          - path: /x
            pathType: Sometimes
            backend:
              service:
                name: web
                port:
                  number: 80
`;
    const r = parseManifestFile('ing.yaml', text);
    expect(r.objects).toEqual([]);
    expect(r.problems).toEqual([
      expect.objectContaining({ file: 'ing.yaml', line: 10, message: expect.stringContaining('spec.rules.0.http.paths.0.pathType') }),
    ]);
  });

  it('rejects a port with both number and name, and a bad name', () => {
    const r = parseManifestFile('x.yaml', `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: Web_Bad
spec:
  defaultBackend:
    service:
      name: web
      port: { number: 80, name: http }
`);
    const messages = r.problems.map((p) => `${p.line}:${p.message}`);
    expect(messages).toEqual(expect.arrayContaining([
      expect.stringMatching(/^4:.*metadata\.name/),
      expect.stringMatching(/^9:.*exactly one of port\.number or port\.name/),
    ]));
  });

  it('keeps a whole file out when one document is bad', () => {
    const r = parseManifestFile('mixed.yaml', `${svc()}---\napiVersion: v1\nkind: Service\nmetadata: {}\n`);
    expect(r.objects).toEqual([]);
    expect(r.problems[0]).toMatchObject({ line: 12 });
  });

  it('warns about kinds it does not use and accepts kind: List', () => {
    const r = parseManifestFile('list.yaml', `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: { name: c }
  - apiVersion: v1
    kind: Service
    metadata: { name: s }
    spec: { ports: [{ port: 80 }] }
`);
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([expect.objectContaining({ line: 4, column: 5, message: expect.stringContaining("ConfigMap") })]);
    expect(r.objects.map((o) => o.object.metadata.name)).toEqual(['s']);
  });

  it('ignores empty files and empty documents', () => {
    expect(parseManifestFile('e.yaml', '').objects).toEqual([]);
    expect(parseManifestFile('e.yaml', '---\n---\n# only a comment\n')).toEqual({ objects: [], problems: [], warnings: [] });
  });
});

describe('pyserve.io/endpoints shorthand', () => {
  it('builds an EndpointSlice per port and family', () => {
    const r = parseManifestFile('s.yaml', svc('  annotations:\n    pyserve.io/endpoints: "127.0.0.1:9001, 127.0.0.2:9001,[::1]:9002"\n'));
    expect(r.problems).toEqual([]);
    const slices = r.objects.filter((o) => o.object.kind === 'EndpointSlice').map((o) => o.object);
    expect(slices).toHaveLength(2);
    expect(slices.map((s) => [s.addressType, s.ports, (s.endpoints as { addresses: string[] }[]).map((e) => e.addresses[0])])).toEqual([
      ['IPv4', [{ name: 'http', port: 9001, protocol: 'TCP' }], ['127.0.0.1', '127.0.0.2']],
      ['IPv6', [{ name: 'http', port: 9002, protocol: 'TCP' }], ['::1']],
    ]);
    expect(slices[0]!.metadata).toMatchObject({ namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } });
  });

  it.each([
    ['localhost:9001', /not an IP address/],
    ['127.0.0.1', /expected host:port/],
    ['127.0.0.1:70000', /port must be/],
    ['admin=127.0.0.1:9001', /no port named "admin"/],
  ])('rejects %s with the annotation line', (value, message) => {
    const r = parseManifestFile('s.yaml', svc(`  annotations:\n    pyserve.io/endpoints: "${value}"\n`));
    expect(r.objects).toEqual([]);
    expect(r.problems).toEqual([expect.objectContaining({ line: 6, message: expect.stringMatching(message) })]);
  });

  it('requires port names when the Service has several ports', () => {
    const text = `apiVersion: v1
kind: Service
metadata:
  name: two
  annotations:
    pyserve.io/endpoints: "127.0.0.1:1"
spec:
  ports: [{ name: a, port: 80 }, { name: b, port: 81 }]
`;
    expect(parseManifestFile('t.yaml', text).problems[0]?.message).toMatch(/several ports/);
    const ok = parseManifestFile('t.yaml', text.replace('"127.0.0.1:1"', '"a=127.0.0.1:1, b=127.0.0.1:2"'));
    expect(ok.problems).toEqual([]);
    expect(ok.objects.filter((o) => o.object.kind === 'EndpointSlice')).toHaveLength(2);
  });
});

describe('TLS Secrets in local mode', () => {
  it('folds stringData into base64 data and rejects other Secret types', () => {
    const ok = parseManifestFile('s.yaml', `apiVersion: v1
kind: Secret
metadata: { name: cert }
type: kubernetes.io/tls
stringData:
  tls.crt: "-----BEGIN CERTIFICATE-----"
data:
  tls.key: ${Buffer.from('KEY').toString('base64')}
`);
    expect(ok.problems).toEqual([]);
    expect(ok.objects[0]!.object.data).toEqual({ 'tls.crt': Buffer.from('-----BEGIN CERTIFICATE-----').toString('base64'), 'tls.key': 'S0VZ' });
    expect(ok.objects[0]!.object.stringData).toBeUndefined();
    const opaque = parseManifestFile('o.yaml', 'apiVersion: v1\nkind: Secret\nmetadata: { name: x }\ntype: Opaque\n');
    expect(opaque.problems[0]).toMatchObject({ line: 4, message: expect.stringContaining('type') });
  });
});
