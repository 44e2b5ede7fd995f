import { describe, expect, it } from 'vitest';
import { targetsFromSlices } from '../../controller/k8s/targets.ts';
import { publishAddresses } from '../../controller/k8s/ingress-status.ts';
import { mergeConditions } from '../../controller/k8s/route-status.ts';
import { parseControllerArgs, UsageError } from '../../controller/controller-cli.ts';

describe('targetsFromSlices', () => {
  it('uses the admin port of each slice, keeps not-ready, drops terminating and FQDN', () => {
    const targets = targetsFromSlices([
      {
        addressType: 'IPv4',
        ports: [{ name: 'admin', port: 9901 }, { name: 'http', port: 8080 }],
        endpoints: [
          { addresses: ['10.0.0.2'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'dp-b' } },
          { addresses: ['10.0.0.1'], conditions: { ready: false } },
          { addresses: ['10.0.0.3'], conditions: { ready: false, terminating: true } },
        ],
      },
      { addressType: 'IPv6', ports: [{ name: 'admin', port: 9902 }], endpoints: [{ addresses: ['fd00::1'] }] },
      { addressType: 'FQDN', ports: [{ name: 'admin', port: 1 }], endpoints: [{ addresses: ['x.example'] }] },
      { addressType: 'IPv4', ports: [{ name: 'other', port: 1 }], endpoints: [{ addresses: ['10.9.9.9'] }] },
    ], 'admin');
    expect(targets).toEqual([
      { id: '10.0.0.1:9901', url: 'http://10.0.0.1:9901' },
      { id: 'dp-b', url: 'http://10.0.0.2:9901' },
      { id: 'fd00::1:9902', url: 'http://[fd00::1]:9902' },
    ]);
  });
});

describe('publishAddresses', () => {
  it('prefers explicit addresses and tells IPs from hostnames', () => {
    expect(publishAddresses(undefined, ['192.0.2.1', 'lb.example.com', '2001:db8::1'])).toEqual([
      { ip: '192.0.2.1' }, { hostname: 'lb.example.com' }, { ip: '2001:db8::1' },
    ]);
  });
  it('reads the Service load balancer otherwise', () => {
    expect(publishAddresses({ status: { loadBalancer: { ingress: [{ ip: '198.51.100.7' }, { hostname: 'x.elb' }, {}] } } }, [])).toEqual([
      { ip: '198.51.100.7' }, { hostname: 'x.elb' },
    ]);
    expect(publishAddresses(undefined, [])).toEqual([]);
  });
});

describe('mergeConditions', () => {
  it('keeps lastTransitionTime when the status holds and moves it when it flips', () => {
    const t1 = new Date('2026-01-01T00:00:00.123Z');
    const t2 = new Date('2026-01-02T00:00:00Z');
    const first = mergeConditions(undefined, [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'ok' }], 1, t1);
    expect(first).toEqual([{ type: 'Accepted', status: 'True', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z', reason: 'Accepted', message: 'ok' }]);
    const same = mergeConditions(first, [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'still ok' }], 2, t2);
    expect(same[0]).toMatchObject({ lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 2, message: 'still ok' });
    const flipped = mergeConditions(first, [{ type: 'Accepted', status: 'False', reason: 'InvalidRouteSpec', message: 'bad' }], 2, t2);
    expect(flipped[0]!.lastTransitionTime).toBe('2026-01-02T00:00:00Z');
  });
});

describe('pyserve controller flags', () => {
  const base = ['--dataplane-service', 'pyserve/pyserve-admin'];
  it('parses a full set', () => {
    const o = parseControllerArgs([...base, '--namespaces', 'a, b', '--default-backend', 'web/default:http', '--publish-address', '1.2.3.4', '--leader-elect=false'], { PYSERVE_PUSH_TOKEN: 't', POD_NAME: 'c-0', POD_NAMESPACE: 'pyserve' });
    expect(o).toMatchObject({
      namespaces: ['a', 'b'], defaultBackend: { namespace: 'web', name: 'default', port: 'http' }, publishAddresses: ['1.2.3.4'],
      leaderElect: false, identity: 'c-0', leaseNamespace: 'pyserve', pushToken: 't', dataplaneService: { namespace: 'pyserve', name: 'pyserve-admin' },
    });
  });
  it.each([
    [[], /--dataplane-service/],
    [base, /push token is required/],
    [['--dataplane-service', 'nonamespace'], /<namespace>\/<name>/],
  ])('rejects %j', (args, message) => {
    expect(() => parseControllerArgs(args, {})).toThrow(UsageError);
    expect(() => parseControllerArgs(args, {})).toThrow(message);
  });
  it('rejects max delay below holdoff', () => {
    expect(() => parseControllerArgs([...base, '--holdoff-ms', '500', '--max-delay-ms', '100'], { PYSERVE_PUSH_TOKEN: 't' })).toThrow(/max-delay/);
  });
});
