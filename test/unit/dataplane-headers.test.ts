import { describe, expect, it } from 'vitest';
import { CLIENT_RESPONSE_LEFT_OUT, clientAddressOf, hostFieldCount, clientResponseFieldLines, clientResponseHeaders, connectionTokens, forwardedFieldLines, forwardedFieldsChecked, responseFieldsChecked, upstreamRequestHeaders } from '../../dataplane/server/headers.ts';
import { isFieldValue, isToken } from '../../dataplane/http1/syntax.ts';
import { ResponseParser } from '../../dataplane/upstream/h1/response-parser.ts';
import type { ResponseHead } from '../../dataplane/upstream/h1/response-parser.ts';
import { requestIdFor } from '../../dataplane/server/request-id.ts';
import { RequestParser } from '../../dataplane/server/h1/request-parser.ts';
import type { RequestHead } from '../../dataplane/server/h1/request-parser.ts';
import { splitTarget } from '../../dataplane/routing/request-head.ts';
import { serializeFieldLines, serializeHead } from '../../dataplane/upstream/h1/request-head.ts';
import { mutatedInputs } from '../helpers/every-split.ts';

/**
 * The first head a parser reports for `input`, fed whole or a byte at a
 * time (the Buffer path), or undefined when the parser refuses it.
 */
function headOf<H>(begin: (onHead: (h: H) => void) => { execute(data: Buffer): unknown }, input: string, byteByByte: boolean): H | undefined {
  let head: H | undefined;
  const parser = begin((h) => (head = h));
  const data = Buffer.from(input, 'latin1');
  try {
    if (!byteByByte) parser.execute(data);
    else for (let i = 0; i < data.length && head === undefined; i++) parser.execute(data.subarray(i, i + 1));
  } catch {
    return undefined;
  }
  return head;
}

const ignore = (): void => undefined;

const requestHead = (input: string, byteByByte = false): RequestHead | undefined => headOf<RequestHead>((onHead) => {
  const parser = new RequestParser(16_384, 4_096);
  parser.begin({ onHead, onBody: ignore, onComplete: ignore });
  return parser;
}, input, byteByByte);

const responseHead = (input: string, byteByByte = false): ResponseHead | undefined => headOf<ResponseHead>((onHead) => {
  const parser = new ResponseParser(16_384);
  parser.begin({ onHead, onBody: ignore, onComplete: ignore }, false);
  return parser;
}, input, byteByByte);

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

  it('counts Host fields in any case', () => {
    expect(hostFieldCount(['Host', 'a', 'X-A', '1'])).toBe(1);
    expect(hostFieldCount(['host', 'a', 'hOsT', 'b', 'Hosts', 'c', 'Hos', 'd', 'HOST', 'e'])).toBe(3);
    expect(hostFieldCount(['X-Host', 'a'])).toBe(0);
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
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    // Each id has random bytes of its own: none is cut from its neighbour's.
    const list = [...ids];
    for (let i = 1; i < list.length; i++) expect(list[i]!.slice(0, 16)).not.toBe(list[i - 1]!.slice(16));
    // Not a counter: the ids of one pool share no prefix.
    const sample = [...ids].slice(0, 256);
    expect(new Set(sample.map((id) => id.slice(0, 6))).size).toBeGreaterThan(250);
  });
});

// The proxy tells the upstream serializer to skip its field checks for
// requests from PyServe's own HTTP/1.1 parser (forwardedFieldsChecked). That
// holds only while every field built from an accepted request passes those
// checks: a parser that lets more through, or a forwarding field made from
// something unchecked, fails here.
describe('forwardedFieldsChecked', () => {
  const seeds = [
    'GET /a?b=c HTTP/1.1\r\nHost: shop.test:8080\r\nX-A: 1\r\nUser-Agent: t\xe9st/1\r\n\r\n',
    'GET http://other.test:81/p HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For: 198.51.100.2\r\nX-Request-ID: abc-123\r\n\r\n',
    'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nCookie: a=1\r\nCookie: b=2\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\r\nhello',
    'GET / HTTP/1.0\r\nX-Tab: a\tb\r\nX-Obs: \x80\xff\r\n\r\n',
  ];

  it('every field built from a request the HTTP/1.1 parser accepted passes the serializer\'s checks (2,000 mutated requests)', () => {
    let checked = 0;
    for (const input of [...seeds, ...mutatedInputs(seeds, 2_000, 0x0f1e1d5)]) {
      const head = requestHead(input);
      if (head === undefined) continue;
      const { authority } = splitTarget(head.url);
      const fields = upstreamRequestHeaders(head.rawHeaders, head.headers, {
        host: authority ?? (head.headers.host as string | undefined),
        clientAddress: clientAddressOf(checked % 2 === 0 ? '::ffff:192.0.2.7' : '2001:db8::1'),
        listenerPort: 8080,
        requestId: requestIdFor(head.headers['x-request-id']),
        contentLength: head.headers['content-length'] as string | undefined,
        proto: checked % 3 === 0 ? 'https' : 'http',
      });
      // Throws PYSERVE_UPSTREAM_INVALID_REQUEST for any field that fails.
      expect(() => serializeHead(head.method, '/', fields, 'none'), JSON.stringify(input)).not.toThrow();
      checked++;
    }
    // Enough accepted requests, many of them mutated, or this tests little.
    expect(checked).toBeGreaterThan(600);
  });

  /** A head's request line and its fields as [lower-case name, value without OWS]. */
  function fieldsOf(head: string): { line: string; fields: [string, string][] } {
    expect(head.endsWith('\r\n\r\n'), JSON.stringify(head)).toBe(true);
    const [line, ...rest] = head.slice(0, -4).split('\r\n');
    return {
      line: line!,
      fields: rest.map((l) => {
        const colon = l.indexOf(':');
        return [l.slice(0, colon).toLowerCase(), l.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')];
      }),
    };
  }

  it('the head made from the lines as they came has the fields serializeHead gives, in order (3,000 mutated requests, whole and byte by byte)', () => {
    const extra = [
      'GET / HTTP/1.1\r\nHost:h\r\nX-Spaces:   a b  \r\nConnection: close\r\nAccept: */*\r\nKeep-Alive: 5\r\nX-Last:\t1\r\n\r\n',
      'PUT /u HTTP/1.1\r\nX-Forwarded-Host: evil\r\nHost: h:81\r\nTransfer-Encoding: chunked\r\nX-Real-IP: 1.2.3.4\r\n\r\n0\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, X-Gone\r\nUpgrade: h2c\r\n\r\n',
    ];
    let compared = 0;
    for (const input of [...seeds, ...extra, ...mutatedInputs([...seeds, ...extra], 3_000, 0x5eed1e5)]) {
      const head = requestHead(input);
      if (head === undefined) continue;
      const { authority } = splitTarget(head.url);
      const host = authority ?? (head.headers.host as string | undefined);
      const lines = head.forwardLines;
      // The proxy takes this path only with a Host and the lines as they came.
      if (host === undefined || lines === undefined) continue;
      expect(requestHead(input, true)?.forwardLines, JSON.stringify(input)).toBe(lines);
      const info = {
        host,
        clientAddress: compared % 2 === 0 ? '192.0.2.7' : '2001:db8::1',
        listenerPort: compared % 2 === 0 ? 8080 : 443,
        requestId: requestIdFor(head.headers['x-request-id']),
        proto: compared % 3 === 0 ? 'https' as const : 'http' as const,
      };
      const contentLength = head.hasBody && head.headers['transfer-encoding'] === undefined ? head.headers['content-length'] as string | undefined : undefined;
      const body = head.hasBody ? 'stream' : 'none';
      const slow = serializeHead(head.method, '/t', upstreamRequestHeaders(head.rawHeaders, head.headers, { ...info, contentLength }), body, 0, 'default.test', true);
      const fast = serializeFieldLines(head.method, '/t', forwardedFieldLines(lines, head.headers['x-forwarded-for'], info), contentLength, body);
      expect(fast.framing).toEqual(slow.framing);
      expect(fieldsOf(fast.head), JSON.stringify(input)).toEqual(fieldsOf(slow.head));
      compared++;
    }
    expect(compared).toBeGreaterThan(600);
  });

  it('gives no forwarded lines when Connection names a field that is present', () => {
    expect(requestHead('GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Hop\r\nX-Hop: 1\r\n\r\n')!.forwardLines).toBeUndefined();
    expect(requestHead('GET / HTTP/1.1\r\nHost: h\r\nX-Hop: 1\r\nConnection: keep-alive, x-hop\r\n\r\n')!.forwardLines).toBeUndefined();
    // Named but absent, or hop-by-hop anyway: the lines stand.
    expect(requestHead('GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Absent, Upgrade\r\nUpgrade: ws\r\nA: 1\r\n\r\n')!.forwardLines).toBe('A: 1\r\n');
    expect(requestHead('GET / HTTP/1.1\r\nHost: h\r\n\r\n')!.forwardLines).toBe('');
    expect(requestHead('GET / HTTP/1.1\r\nA: 1\r\nHost: h\r\nB:2\r\nC: 3 \r\n\r\n')!.forwardLines).toBe('A: 1\r\nB:2\r\nC: 3 \r\n');
  });

  it('is true only for the own HTTP/1.1 parser\'s requests without a host rewrite or header edits', () => {
    expect(forwardedFieldsChecked(true, {})).toBe(true);
    expect(forwardedFieldsChecked(true, { upstreamHost: undefined, edits: null })).toBe(true);
    expect(forwardedFieldsChecked(false, {})).toBe(false);
    expect(forwardedFieldsChecked(true, { upstreamHost: 'backend.internal' })).toBe(false);
    expect(forwardedFieldsChecked(true, { edits: { set: [], add: [], remove: [] } as never })).toBe(false);
  });

  it('the serializer still checks the method and target when told the fields are checked', () => {
    expect(() => serializeHead('G T', '/', [], 'none', 0, undefined, true)).toThrow(/method/);
    expect(() => serializeHead('GET', '/a b', [], 'none', 0, undefined, true)).toThrow(/target/);
    expect(serializeHead('GET', '/', ['x', 'a\tb'], 'none', 0, undefined, true).head).toBe('GET / HTTP/1.1\r\nx: a\tb\r\n\r\n');
  });
});

// The same for responses: H1Response.writeCheckedHead renders without the
// checks writeHead makes, for heads from PyServe's upstream parser.
describe('responseFieldsChecked', () => {
  const seeds = [
    'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026 03:50:22 GMT\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\r\nhello',
    'HTTP/1.1 404 Not Found\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2; Path=/\r\nX-Obs: caf\xe9 \x80\xff\r\nX-Tab: a\tb\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5\r\nVary: Accept-Encoding\r\nContent-Length: 0\r\n\r\n',
  ];

  it('every header built from a response head the upstream parser accepted passes the response checks (2,000 mutated responses)', () => {
    let checked = 0;
    for (const input of [...seeds, ...mutatedInputs(seeds, 2_000, 0x7e5b0d1)]) {
      const upstream = responseHead(input)?.headers;
      if (upstream === undefined) continue;
      const out = clientResponseHeaders(upstream, requestIdFor(checked % 2 === 0 ? undefined : 'client-id-1'));
      for (const [name, value] of Object.entries(out)) {
        expect(name.length > 0 && isToken(name, 0, name.length), JSON.stringify(input)).toBe(true);
        for (const v of Array.isArray(value) ? value : [String(value)]) expect(isFieldValue(v, 0, v.length), JSON.stringify(input)).toBe(true);
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(600);
  });

  const FIELD_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/s;

  // The lines H1Response.writeFieldLines sends, against the object writeHead
  // would get: the same fields (Content-Length aside, which the response
  // renders from the parsed length), each a well-formed line.
  it('the field lines passed on as they came are the fields clientResponseHeaders gives (2,000 mutated responses)', () => {
    const extra = [
      'HTTP/1.1 200 OK\r\nConnection: close, X_Under\r\nx_under: 1\r\nX-Request-ID: theirs\r\nTE: a\r\nTrailer: b\r\nUpgrade: c\r\nProxy-Connection: d\r\nHTTP2-Settings: e\r\nKeep-Alive: timeout=1\r\nContent-Length: 0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nDATE: Mon, 07 Dec 2026 03:50:22 GMT\r\nX-Last:  spaced\t \r\n\r\n',
      // Body bytes read with the head: the parser's text goes on past the head.
      'HTTP/1.1 200 OK\r\nContent-Length: 13\r\nX-Last: v\r\n\r\nhello, world!',
    ];
    let compared = 0;
    for (const input of [...seeds, ...extra, ...mutatedInputs([...seeds, ...extra], 2_000, 0x11e5)]) {
      const head = responseHead(input);
      if (head?.fieldLines === undefined) continue;
      const id = requestIdFor(compared % 2 === 0 ? undefined : 'client-id-1');
      const lines = clientResponseFieldLines(head.fieldLines, id);
      expect(lines.text.endsWith('\r\n') || lines.text === '', JSON.stringify(input)).toBe(true);
      const sent: string[] = [];
      for (const line of lines.text.split('\r\n').slice(0, -1)) {
        const m = FIELD_LINE.exec(line);
        expect(m, JSON.stringify({ input, line })).not.toBeNull();
        expect(isFieldValue(m![2]!, 0, m![2]!.length), JSON.stringify({ input, line })).toBe(true);
        sent.push(`${m![1]!.toLowerCase()}: ${m![2]!}`);
      }
      const expected: string[] = [];
      const object = clientResponseHeaders(head.headers, id);
      for (const [name, value] of Object.entries(object)) {
        if (name === 'content-length') continue;
        for (const v of Array.isArray(value) ? value : [String(value)]) expected.push(`${name}: ${v}`);
      }
      expect(sent.sort(), JSON.stringify(input)).toEqual(expected.sort());
      expect(lines.hasDate, JSON.stringify(input)).toBe(object.date !== undefined);
      expect(head.contentLength, JSON.stringify(input)).toBe(object['content-length'] === undefined ? -1 : Number(object['content-length']));
      compared++;
    }
    expect(compared).toBeGreaterThan(600);
  });

  // The lines the parser gathers as it reads (FieldLines.kept) against the
  // line-by-line walk clientResponseFieldLines makes without them.
  it('the lines gathered in the parse are the ones the line-by-line walk keeps (4,000 mutated responses, whole and byte by byte)', () => {
    const extra = [
      'HTTP/1.1 200 OK\r\nConnection: close\r\nClose: 1\r\nX-A: 2\r\n\r\n',
      'HTTP/1.1 200 OK\r\nConnection: close\r\nClosE2: 1\r\nVary5: 2\r\n\r\n',
      'HTTP/1.1 200 OK\r\nX-Request-Id: 1\r\nte: 2\r\nA: 3\r\nUPGRADE: 4\r\nB:5\r\nhttp2-settings: 6\r\nproxy-connection: 7\r\nTrailer: 8\r\nDate: d\r\n\r\n',
      'HTTP/1.1 200 OK\r\nConnection: keep-alive, Upgrade, X-Gone\r\nX-Stay: 1\r\n\r\n',
    ];
    let fast = 0;
    let slow = 0;
    for (const input of [...seeds, ...extra, ...mutatedInputs([...seeds, ...extra], 4_000, 0x9a7e)]) {
      const head = responseHead(input);
      if (head?.fieldLines === undefined) continue;
      const lines = head.fieldLines;
      expect(responseHead(input, true)?.fieldLines?.kept, JSON.stringify(input)).toBe(lines.kept);
      if (lines.kept === undefined) {
        slow++;
        continue;
      }
      const walked = clientResponseFieldLines({ text: lines.text, end: lines.end, offsets: lines.offsets, connectionTokens: lines.connectionTokens, hasDate: lines.hasDate, kept: undefined }, 'rid');
      expect(clientResponseFieldLines(lines, 'rid'), JSON.stringify(input)).toEqual(walked);
      fast++;
    }
    expect(fast).toBeGreaterThan(600);
    expect(slow).toBeGreaterThan(10);
  });

  it('leaves out every name clientResponseFieldLines leaves out, in any case, as it reads', () => {
    const values: Record<string, string> = { 'content-length': '0', 'transfer-encoding': 'chunked', connection: 'keep-alive', 'keep-alive': 'timeout=5' };
    expect(CLIENT_RESPONSE_LEFT_OUT.size).toBeGreaterThanOrEqual(10);
    for (const name of CLIENT_RESPONSE_LEFT_OUT) {
      for (const spelled of [name, name.toUpperCase()]) {
        const framing = name === 'content-length' || name === 'transfer-encoding' ? '' : 'Content-Length: 0\r\n';
        const head = responseHead(`HTTP/1.1 200 OK\r\nX-A: 1\r\n${spelled}: ${values[name] ?? 'v'}\r\nX-B: 2\r\n${framing}\r\n`);
        expect(head?.fieldLines?.kept, spelled).toBe('X-A: 1\r\nX-B: 2\r\n');
      }
    }
  });

  it('gathers no lines when Connection names a field beyond those left out anyway', () => {
    const kept = (input: string): string | undefined => responseHead(input)!.fieldLines!.kept;
    expect(kept('HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nContent-Length: 0\r\n\r\n')).toBeUndefined();
    expect(kept('HTTP/1.1 200 OK\r\nConnection: close\r\nClose: 1\r\nContent-Length: 0\r\n\r\n')).toBeUndefined();
    expect(kept('HTTP/1.1 200 OK\r\nServer: s\r\nDate: d\r\nContent-Length: 0\r\nConnection: close, keep-alive, Upgrade\r\nX-B: 2\r\n\r\n'))
      .toBe('Server: s\r\nDate: d\r\nX-B: 2\r\n');
  });

  it('heads with a repeated framing or connection field go through the header object', () => {
    for (const field of ['Content-Length: 0', 'Connection: keep-alive', 'Keep-Alive: timeout=5', 'Transfer-Encoding: chunked']) {
      const head = responseHead(`HTTP/1.1 200 OK\r\n${field}\r\nX-A: 1\r\n${field}\r\nContent-Length: 0\r\n\r\n`);
      expect(head, field).toBeDefined();
      expect(head!.fieldLines, field).toBeUndefined();
      expect(head!.headers['x-a']).toBe('1');
    }
    expect(responseHead('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: 1\r\nX-A: 2\r\n\r\n')!.fieldLines).toBeDefined();
  });

  it('is true only without edits, an affinity cookie or response hooks, for the own parser\'s heads', () => {
    expect(responseFieldsChecked(true, { edits: null, cookieAdded: false, responseHooks: false })).toBe(true);
    expect(responseFieldsChecked(false, { edits: null, cookieAdded: false, responseHooks: false })).toBe(false);
    expect(responseFieldsChecked(true, { edits: { set: [], add: [], remove: [] } as never, cookieAdded: false, responseHooks: false })).toBe(false);
    expect(responseFieldsChecked(true, { edits: null, cookieAdded: true, responseHooks: false })).toBe(false);
    expect(responseFieldsChecked(true, { edits: null, cookieAdded: false, responseHooks: true })).toBe(false);
  });
});
