import { describe, expect, it } from 'vitest';
import { clientAddressOf, clientResponseHeaders, connectionTokens, upstreamRequestHeaders } from '../../dataplane/server/headers.ts';
import { requestIdFor } from '../../dataplane/server/request-id.ts';

const pairs = (flat: string[]): [string, string][] => {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
};

describe('upstreamRequestHeaders', () => {
  const info = { host: 'shop.test:8080', clientAddress: '192.0.2.7', listenerPort: 8080, requestId: 'rid', contentLength: undefined };

  it('drops hop-by-hop headers and those listed in Connection, keeps the rest in order', () => {
    const raw = [
      'Host', 'shop.test:8080',
      'Connection', 'keep-alive, X-Private',
      'X-Private', 'secret',
      'Keep-Alive', 'timeout=5',
      'TE', 'trailers',
      'Trailer', 'x-t',
      'Transfer-Encoding', 'chunked',
      'Upgrade', 'h2c',
      'Proxy-Connection', 'keep-alive',
      'Expect', '100-continue',
      'Accept', 'a/b',
      'Cookie', 'a=1',
      'Cookie', 'b=2',
    ];
    const out = pairs(upstreamRequestHeaders(raw, { connection: 'keep-alive, X-Private' }, info));
    expect(out).toEqual([
      ['Accept', 'a/b'],
      ['Cookie', 'a=1'],
      ['Cookie', 'b=2'],
      ['host', 'shop.test:8080'],
      ['x-forwarded-for', '192.0.2.7'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', 'shop.test:8080'],
      ['x-forwarded-port', '8080'],
      ['x-real-ip', '192.0.2.7'],
      ['x-request-id', 'rid'],
    ]);
  });

  it('appends to X-Forwarded-For and replaces the other forwarding headers', () => {
    const raw = ['X-Forwarded-For', '203.0.113.1', 'X-Forwarded-Proto', 'https', 'X-Request-ID', 'spoofed', 'Content-Length', '5'];
    const out = new Map(pairs(upstreamRequestHeaders(raw, { 'x-forwarded-for': '203.0.113.1' }, { ...info, contentLength: '5' })));
    expect(out.get('x-forwarded-for')).toBe('203.0.113.1, 192.0.2.7');
    expect(out.get('x-forwarded-proto')).toBe('http');
    expect(out.get('x-request-id')).toBe('rid');
    expect(out.get('content-length')).toBe('5');
    expect(out.has('X-Forwarded-Proto')).toBe(false);
  });
});

describe('clientResponseHeaders', () => {
  it('drops hop-by-hop and Connection-listed headers and sets the request id', () => {
    const out = clientResponseHeaders({
      connection: 'x-up',
      'x-up': '1',
      'keep-alive': 'timeout=30',
      'transfer-encoding': 'chunked',
      'set-cookie': ['a=1', 'b=2'],
      'content-type': 'text/html',
      'x-request-id': 'upstream-id',
    }, 'rid');
    expect(out).toEqual({ 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/html', 'x-request-id': 'rid' });
  });
});

describe('small helpers', () => {
  it('parses Connection tokens', () => {
    expect(connectionTokens(undefined)).toBeUndefined();
    expect(connectionTokens(' , ')).toBeUndefined();
    expect([...connectionTokens('Keep-Alive, X-A ,x-b')!]).toEqual(['keep-alive', 'x-a', 'x-b']);
  });

  it('unmaps IPv4-mapped IPv6 client addresses', () => {
    expect(clientAddressOf('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(clientAddressOf('::1')).toBe('::1');
    expect(clientAddressOf(undefined)).toBe('');
  });

  it('keeps a sane client request id and replaces others', () => {
    expect(requestIdFor('abc-123')).toBe('abc-123');
    expect(requestIdFor(undefined)).toMatch(/^[0-9a-f]{32}$/);
    expect(requestIdFor('has space')).toMatch(/^[0-9a-f]{32}$/);
    expect(requestIdFor('x'.repeat(201))).toMatch(/^[0-9a-f]{32}$/);
    expect(requestIdFor(['a', 'b'])).toMatch(/^[0-9a-f]{32}$/);
  });

  it('makes distinct ids across refills of its random pool (256 ids per refill)', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 2000; i++) ids.add(requestIdFor(undefined));
    expect(ids.size).toBe(2000);
    // Not a counter: the ids of one pool share no prefix.
    const sample = [...ids].slice(0, 256);
    expect(new Set(sample.map((id) => id.slice(0, 6))).size).toBeGreaterThan(250);
  });
});
