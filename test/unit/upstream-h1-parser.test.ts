// The HTTP/1.1 upstream client's pure parts: ResponseParser (incremental
// response parsing: every split of the input must give the same result as
// one piece) and serializeHead (request heads and their body framing).
import { describe, expect, it } from 'vitest';
import { bytes, mutatedInputs, parseEverySplit as everySplit } from '../helpers/every-split.ts';
import { expectScanAgreesWithLineParts } from '../helpers/field-scan.ts';
import { UPSTREAM_CODES, UpstreamError } from '../../dataplane/upstream/h1/errors.ts';
import { serializeHead } from '../../dataplane/upstream/h1/request-head.ts';
import { lineParts, ResponseParser } from '../../dataplane/upstream/h1/response-parser.ts';
import { sameTokenBytes, tokenBytes } from '../../dataplane/http1/syntax.ts';
import type { ResponseHead } from '../../dataplane/upstream/h1/response-parser.ts';

/** What a head says, as a plain object (a ResponseHead builds `headers` on first read). */
type HeadSeen = Pick<ResponseHead, 'status' | 'headers' | 'keepAlive' | 'keepAliveHintSeconds'>;

/** Everything a parser reported for one response. */
interface Parsed {
  heads: HeadSeen[];
  body: string;
  /** onComplete calls. */
  completes: number;
  /** Bytes `execute` said belonged to the response, summed over the pieces (-1 after an error). */
  used: number;
  /** The error thrown, if any, as `code: message`. */
  error: string | undefined;
  /** The parser's own view at the end. */
  done: boolean;
  keepAlive: boolean;
  /** Body pieces that came with their latin1 string as well. */
  decodedPieces: number;
}

/** Feed `pieces` to a fresh parser (then `end()` when `eof`), as a connection does: stop once complete. */
function parse(pieces: Buffer[], opts: { noBody?: boolean; eof?: boolean; maxHeadBytes?: number } = {}): Parsed {
  const parser = new ResponseParser(opts.maxHeadBytes ?? 16_384);
  const out: Parsed = { heads: [], body: '', completes: 0, used: 0, error: undefined, done: false, keepAlive: false, decodedPieces: 0 };
  parser.begin({
    onHead: (h) => out.heads.push({ status: h.status, headers: h.headers, keepAlive: h.keepAlive, keepAliveHintSeconds: h.keepAliveHintSeconds }),
    onBody: (c, latin1) => {
      out.body += c.toString('latin1');
      // The parser's own decoding of these bytes, when it has one, is the same bytes.
      if (latin1 !== undefined) {
        expect(latin1).toBe(c.toString('latin1'));
        out.decodedPieces++;
      }
    },
    onComplete: () => out.completes++,
  }, opts.noBody ?? false);
  try {
    for (const piece of pieces) {
      if (parser.done) break;
      const n = parser.execute(piece);
      expect(n).toBeLessThanOrEqual(piece.length);
      // Fewer bytes than given only once the response is complete.
      if (n < piece.length) expect(parser.done).toBe(true);
      out.used += n;
    }
    if (opts.eof) parser.end();
  } catch (err) {
    expect(err).toBeInstanceOf(UpstreamError);
    out.error = `${(err as UpstreamError).code}: ${(err as Error).message}`;
    // How far it got before throwing depends on the split; the rest must not.
    out.used = -1;
  }
  out.done = parser.done;
  out.keepAlive = parser.keepAlive;
  return out;
}

/** Parse whole, byte by byte, and split at every offset; all must agree. Returns the whole-input result. */
const parseEverySplit = (input: string, opts: { noBody?: boolean; eof?: boolean; maxHeadBytes?: number } = {}): Omit<Parsed, 'decodedPieces'> =>
  everySplit(input, (pieces) => {
    // Which pieces come decoded depends on the split; what they hold does not.
    const { decodedPieces: _, ...rest } = parse(pieces, opts);
    return rest;
  });

const BAD = UPSTREAM_CODES.badResponse;

describe('ResponseParser: valid responses, at every split', () => {
  it('a Content-Length body, stopping exactly at its end', () => {
    const response = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello';
    const r = parseEverySplit(`${response}HTTP/1.1 200 OK\r\n`);
    expect(r).toMatchObject({ body: 'hello', completes: 1, used: response.length, error: undefined, done: true, keepAlive: true });
    expect(r.heads).toEqual([{ status: 200, headers: { 'content-length': '5', 'x-a': ['1', '2'] }, keepAlive: true, keepAliveHintSeconds: undefined }]);
  });

  it('body bytes read with the head come decoded as well (Content-Length and first chunk), later ones do not', () => {
    const length = 'HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello, world!';
    expect(parse([bytes(length)])).toMatchObject({ body: 'hello, world!', decodedPieces: 1, completes: 1 });
    expect(parse([bytes(length.slice(0, -5)), bytes(length.slice(-5))])).toMatchObject({ body: 'hello, world!', decodedPieces: 1, completes: 1 });
    expect(parse([bytes(length.slice(0, -13)), bytes(length.slice(-13))])).toMatchObject({ body: 'hello, world!', decodedPieces: 0, completes: 1 });
    const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n';
    expect(parse([bytes(chunked)])).toMatchObject({ body: 'helloabc', decodedPieces: 2, completes: 1 });
  });

  it('heads ending on either side of the 2 KiB that readHead decodes in one go, with their body in the same read', () => {
    for (const size of [2040, 2044, 2045, 2046, 2047, 2048, 2049, 2052, 4200]) {
      const base = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: \r\n\r\n';
      const value = 'v'.repeat(size - base.length);
      const response = `HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: ${value}\r\n\r\nhello`;
      const r = parseEverySplit(`${response}HTTP/1.1 200 OK\r\n`);
      expect(r, String(size)).toMatchObject({ body: 'hello', completes: 1, used: response.length, error: undefined });
      expect(r.heads, String(size)).toEqual([{ status: 200, headers: { 'content-length': '5', x: value }, keepAlive: true, keepAliveHintSeconds: undefined }]);
    }
  });

  it('a chunked body with extensions, BWS before them and trailers, stopping exactly at its end', () => {
    const response = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
      + '5;a=b\r\nhello\r\n6 \t; q="x;y"\r\n world\r\nA\r\n0123456789\r\n0;last\r\nX-T: 1\r\nX-U: 2\r\n\r\n';
    const r = parseEverySplit(`${response}extra`);
    expect(r).toMatchObject({ body: 'hello world0123456789', completes: 1, used: response.length, error: undefined, done: true, keepAlive: true });
    expect(r.heads[0]!.headers).toEqual({ 'transfer-encoding': 'chunked' });
  });

  it('a chunked body with upper- and lower-case hex sizes', () => {
    const r = parseEverySplit(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n${'x'.repeat(11)}\r\nB\r\n${'y'.repeat(11)}\r\n0\r\n\r\n`);
    expect(r.body).toBe('x'.repeat(11) + 'y'.repeat(11));
    expect(r.completes).toBe(1);
  });

  it('1xx heads are skipped: one head reported, the final one', () => {
    const response = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok';
    const r = parseEverySplit(response);
    expect(r.heads.map((h) => [h.status, h.headers])).toEqual([[201, { 'content-length': '2' }]]);
    expect(r).toMatchObject({ body: 'ok', completes: 1, used: response.length });
  });

  it('a close-delimited body completes at end() and is not kept alive', () => {
    const response = 'HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nsome body bytes';
    const r = parseEverySplit(response, { eof: true });
    expect(r).toMatchObject({ body: 'some body bytes', completes: 1, used: response.length, error: undefined, done: true, keepAlive: false });
    // Without end() it is not complete.
    expect(parse([bytes(response)])).toMatchObject({ completes: 0, done: false });
  });

  it('HEAD (noBody): no body whatever the framing says; the connection stays usable', () => {
    for (const framing of ['Content-Length: 100', 'Transfer-Encoding: chunked']) {
      const head = `HTTP/1.1 200 OK\r\n${framing}\r\n\r\n`;
      const r = parseEverySplit(`${head}HTTP/1.1`, { noBody: true });
      expect(r).toMatchObject({ body: '', completes: 1, used: head.length, done: true, keepAlive: true });
    }
  });

  it('204 and 304 have no body; Content-Length: 0 is complete at the head', () => {
    for (const head of ['HTTP/1.1 204 No Content\r\n\r\n', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']) {
      const r = parseEverySplit(`${head}next`);
      expect(r).toMatchObject({ body: '', completes: 1, used: head.length, done: true, keepAlive: true });
    }
  });

  it('an empty reason phrase and no reason at all', () => {
    expect(parseEverySplit('HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n').heads[0]!.status).toBe(200);
    expect(parseEverySplit('HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n').heads[0]!.status).toBe(404);
  });

  it('header values are trimmed of SP and HTAB; names are lower-cased; constructor is a plain header', () => {
    const r = parseEverySplit('HTTP/1.1 200 OK\r\nX-A: \t a b \t\r\nX-Empty:\r\nConstructor: c\r\nconstructor: d\r\ntoString: t\r\nContent-Length: 0\r\n\r\n');
    expect(r.heads[0]!.headers).toEqual({ 'x-a': 'a b', 'x-empty': '', constructor: ['c', 'd'], tostring: 't', 'content-length': '0' });
  });

  it('repeated Content-Length values that agree are accepted', () => {
    expect(parseEverySplit('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nok').body).toBe('ok');
  });

  it('Transfer-Encoding wins over Content-Length, and the connection is not reused', () => {
    const r = parseEverySplit('HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n');
    expect(r).toMatchObject({ body: 'ok', completes: 1, keepAlive: false });
    expect(r.heads[0]!.keepAlive).toBe(false);
  });

  it('a Transfer-Encoding not ending in chunked reads until close', () => {
    const r = parseEverySplit('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\nok', { eof: true });
    expect(r).toMatchObject({ body: '2\r\nok', completes: 1, keepAlive: false });
  });
});

describe('ResponseParser: keep-alive', () => {
  const keep = (head: string): [boolean, number | undefined] => {
    const r = parse([bytes(`${head}Content-Length: 0\r\n\r\n`)]);
    expect(r.error).toBeUndefined();
    return [r.heads[0]!.keepAlive, r.heads[0]!.keepAliveHintSeconds];
  };

  it('HTTP/1.1 keeps by default; Connection: close in any case or list position closes', () => {
    expect(keep('HTTP/1.1 200 OK\r\n')).toEqual([true, undefined]);
    expect(keep('HTTP/1.1 200 OK\r\nConnection: close\r\n')).toEqual([false, undefined]);
    expect(keep('HTTP/1.1 200 OK\r\nConnection: x-foo, Close\r\n')).toEqual([false, undefined]);
    expect(keep('HTTP/1.1 200 OK\r\nConnection: x-foo\r\nConnection: CLOSE\r\n')).toEqual([false, undefined]);
  });

  it('HTTP/1.0 closes by default; Connection: keep-alive keeps', () => {
    expect(keep('HTTP/1.0 200 OK\r\n')).toEqual([false, undefined]);
    expect(keep('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n')).toEqual([true, undefined]);
  });

  it('reads the Keep-Alive timeout hint', () => {
    expect(keep('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\n')).toEqual([true, 5]);
    expect(keep('HTTP/1.1 200 OK\r\nKeep-Alive: max=100, timeout = 7\r\n')).toEqual([true, 7]);
    expect(keep('HTTP/1.1 200 OK\r\nKeep-Alive: max=100\r\n')).toEqual([true, undefined]);
    // No hint when the connection is not kept anyway.
    expect(keep('HTTP/1.1 200 OK\r\nConnection: close\r\nKeep-Alive: timeout=5\r\n')).toEqual([false, undefined]);
  });
});

describe('ResponseParser: refusals, at every split', () => {
  const OK_TAIL = 'Content-Length: 2\r\n\r\nok';
  const CHUNKED = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  // A bare LF inside a head that did end may be reported as what it breaks, or as a bare LF.
  const cases: [string, string, string | RegExp][] = [
    ['a bare LF ending the status line', 'HTTP/1.1 200 OK\nX-A: 1\r\n' + OK_TAIL, /^(malformed upstream status line|bare LF in upstream response head)$/],
    ['a bare LF ending a header line', 'HTTP/1.1 200 OK\r\nX-A: 1\n' + OK_TAIL, /^(invalid character in upstream header value|bare LF in upstream response head)$/],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n' + OK_TAIL, 'malformed upstream header line'],
    ['obs-fold with a colon', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n x: y\r\n' + OK_TAIL, 'invalid upstream header name'],
    ['a space in a name', 'HTTP/1.1 200 OK\r\nX A: 1\r\n' + OK_TAIL, 'invalid upstream header name'],
    ['a non-ASCII name', 'HTTP/1.1 200 OK\r\nX-\xe9: 1\r\n' + OK_TAIL, 'invalid upstream header name'],
    ['an empty name', 'HTTP/1.1 200 OK\r\n: 1\r\n' + OK_TAIL, 'malformed upstream header line'],
    ['a DEL in a value', 'HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\n' + OK_TAIL, 'invalid character in upstream header value'],
    ['a __proto__ header', 'HTTP/1.1 200 OK\r\n__proto__: {}\r\n' + OK_TAIL, 'invalid upstream header name'],
    ['two Content-Length values', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 20\r\n\r\nok', 'invalid upstream Content-Length'],
    ['an empty Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nok', 'invalid upstream Content-Length'],
    ['a Content-Length of 16 digits', 'HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000\r\n\r\nok', 'invalid upstream Content-Length'],
    ['HTTP/2.0', 'HTTP/2.0 200 OK\r\n' + OK_TAIL, 'malformed upstream status line'],
    ['status 099', 'HTTP/1.1 099 X\r\n' + OK_TAIL, 'malformed upstream status line'],
    ['status 1000', 'HTTP/1.1 1000 X\r\n' + OK_TAIL, 'malformed upstream status line'],
    ['two spaces before the status', 'HTTP/1.1  200 OK\r\n' + OK_TAIL, 'malformed upstream status line'],
    ['101', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n', 'unexpected 101 Switching Protocols'],
    ['a non-hex chunk size', `${CHUNKED}zz\r\nok\r\n0\r\n\r\n`, 'invalid upstream chunk size'],
    ['a chunk size of 20 hex digits', `${CHUNKED}${'0'.repeat(19)}1\r\nx\r\n0\r\n\r\n`, 'invalid upstream chunk size'],
    ['chunk data longer than its size', `${CHUNKED}2\r\nokay\r\n0\r\n\r\n`, 'chunk data longer than its size'],
    ['a bare LF in a chunk line', `${CHUNKED}2\nok\r\n0\r\n\r\n`, 'bare LF in upstream chunked body'],
    ['a stray CR in a chunk line', `${CHUNKED}2\r\r\nok\r\n0\r\n\r\n`, 'stray CR in upstream chunked body'],
    ['a chunk line over 4096 bytes', `${CHUNKED}2;${'e'.repeat(5000)}\r\nok\r\n0\r\n\r\n`, 'upstream chunk line too long'],
    ['a trailer without colon', `${CHUNKED}2\r\nok\r\n0\r\nbad trailer\r\n\r\n`, 'malformed upstream trailer line'],
  ];

  it.each(cases)('%s', (_name, input, message) => {
    const r = parseEverySplit(input);
    expect(r.error?.startsWith(`${BAD}: `)).toBe(true);
    if (typeof message === 'string') expect(r.error).toBe(`${BAD}: ${message}`);
    else expect(r.error?.slice(BAD.length + 2)).toMatch(message);
  });

  it('a head of bare-LF lines only is refused as soon as it is seen, not left waiting for a CRLFCRLF', () => {
    const r = parse([bytes('HTTP/1.1 200 OK\nContent-Length: 2\n\nok')]);
    expect(r.error).toMatch(new RegExp(`^${BAD}: `));
  });

  it('refuses a head larger than maxHeadBytes, whether or not it has ended', () => {
    const head = (size: number): string => {
      const base = 'HTTP/1.1 200 OK\r\nX: \r\n\r\n';
      return `HTTP/1.1 200 OK\r\nX: ${'x'.repeat(size - base.length)}\r\n\r\n`;
    };
    expect(head(64).length).toBe(64);
    expect(parseEverySplit(head(64), { maxHeadBytes: 64, eof: true })).toMatchObject({ error: undefined, completes: 1 });
    expect(parseEverySplit(head(65), { maxHeadBytes: 64, eof: true }).error).toBe(`${BAD}: upstream response head larger than 64 bytes`);
    expect(parse([bytes(`HTTP/1.1 200 OK\r\nX: ${'x'.repeat(100)}`)], { maxHeadBytes: 64 }).error).toBe(`${BAD}: upstream response head larger than 64 bytes`);
  });

  it('end() mid-response throws PYSERVE_UPSTREAM_CLOSED, saying whether anything had arrived', () => {
    expect(parse([], { eof: true }).error).toBe(`${UPSTREAM_CODES.closed}: upstream closed the connection before responding`);
    expect(parse([bytes('HTTP/1.1 2')], { eof: true }).error).toBe(`${UPSTREAM_CODES.closed}: upstream closed the connection mid-response`);
    expect(parse([bytes('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab')], { eof: true }).error).toBe(`${UPSTREAM_CODES.closed}: upstream closed the connection mid-response`);
    expect(parse([bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n')], { eof: true }).error).toMatch(/mid-response$/);
  });
});

describe('ResponseParser: state across responses', () => {
  it('started is false until a byte of the response arrived, and after 1xx heads', () => {
    const parser = new ResponseParser(1024);
    parser.begin({ onHead: () => {}, onBody: () => {}, onComplete: () => {} }, false);
    expect([parser.started, parser.done]).toEqual([false, false]);
    parser.execute(bytes('HTTP/1.1 100 Continue\r\n\r\n'));
    expect(parser.started).toBe(false);
    parser.execute(bytes('HTTP/1.1 2'));
    expect(parser.started).toBe(true);
  });

  it('parses consecutive responses after begin()', () => {
    const parser = new ResponseParser(1024);
    const seen: string[] = [];
    const events = { onHead: (h: ResponseHead) => seen.push(`head ${h.status}`), onBody: (c: Buffer) => seen.push(`body ${c.toString()}`), onComplete: () => seen.push('complete') };
    const stream = bytes('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 201 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n');
    parser.begin(events, false);
    const n = parser.execute(stream);
    expect(parser.done).toBe(true);
    parser.begin(events, false);
    expect(parser.execute(stream.subarray(n))).toBe(stream.length - n);
    expect(parser.done).toBe(true);
    expect(seen).toEqual(['head 200', 'body a', 'complete', 'head 201', 'body b', 'complete']);
  });
});

describe('serializeHead', () => {
  it('writes the request line and fields in order and case, without the caller\'s framing fields', () => {
    const h = serializeHead('GET', '/a?b=c', ['Host', 'h.test', 'X-B', '2', 'x-a', '1', 'CONNECTION', 'keep-alive', 'Transfer-Encoding', 'chunked', 'X-B', '3', 'X-Tab', 'a\tb', 'X-Latin', 'caf\xe9'], 'none');
    expect(h).toEqual({ head: 'GET /a?b=c HTTP/1.1\r\nHost: h.test\r\nX-B: 2\r\nx-a: 1\r\nX-B: 3\r\nX-Tab: a\tb\r\nX-Latin: caf\xe9\r\n\r\n', framing: { kind: 'none' } });
  });

  it('adds the default Host only when the list has none, in any case', () => {
    expect(serializeHead('GET', '/', ['X-A', '1'], 'none', 0, '10.0.0.1:8080').head).toBe('GET / HTTP/1.1\r\nX-A: 1\r\nhost: 10.0.0.1:8080\r\n\r\n');
    expect(serializeHead('GET', '/', ['HOST', 'a.test'], 'none', 0, '10.0.0.1:8080').head).toBe('GET / HTTP/1.1\r\nHOST: a.test\r\n\r\n');
    expect(serializeHead('GET', '/', ['Hosts', 'x'], 'none', 0, '[fd00::1]:80').head).toBe('GET / HTTP/1.1\r\nHosts: x\r\nhost: [fd00::1]:80\r\n\r\n');
  });

  it.each<[string, string, string[], 'none' | 'buffer' | 'stream', number, string, string]>([
    ['GET without body', 'GET', [], 'none', 0, '', 'none'],
    ['GET with an empty Buffer', 'GET', [], 'buffer', 0, '', 'none'],
    ['GET with Content-Length: 0 and no body', 'GET', ['Content-Length', '0'], 'none', 0, 'content-length: 0\r\n', 'length 0'],
    ['GET with a stale Content-Length and no body', 'GET', ['Content-Length', '7'], 'none', 0, '', 'none'],
    ['DELETE without body', 'DELETE', [], 'none', 0, '', 'none'],
    ['POST without body', 'POST', [], 'none', 0, 'content-length: 0\r\n', 'length 0'],
    ['PUT without body', 'PUT', [], 'none', 0, 'content-length: 0\r\n', 'length 0'],
    ['PATCH with an empty Buffer', 'PATCH', [], 'buffer', 0, 'content-length: 0\r\n', 'length 0'],
    ['POST with a Buffer', 'POST', [], 'buffer', 5, 'content-length: 5\r\n', 'length 5'],
    ['POST with a Buffer and a matching Content-Length', 'POST', ['Content-Length', '5', 'content-length', '5'], 'buffer', 5, 'content-length: 5\r\n', 'length 5'],
    ['POST with a stream', 'POST', [], 'stream', 0, 'transfer-encoding: chunked\r\n', 'chunked'],
    ['POST with a stream and its Content-Length', 'POST', ['Content-Length', '1234'], 'stream', 0, 'content-length: 1234\r\n', 'length 1234'],
    ['POST with a stream and Transfer-Encoding: chunked', 'POST', ['Transfer-Encoding', 'chunked'], 'stream', 0, 'transfer-encoding: chunked\r\n', 'chunked'],
  ])('frames %s', (_name, method, headers, body, length, field, framing) => {
    const h = serializeHead(method, '/', ['X-A', '1', ...headers], body, length);
    expect(h.head).toBe(`${method} / HTTP/1.1\r\nX-A: 1\r\n${field}\r\n`);
    const f = h.framing;
    expect(f.kind === 'length' ? `length ${f.length}` : f.kind).toBe(framing);
  });

  it.each<[string, string, string, string[], 'none' | 'buffer' | 'stream', number]>([
    ['CR in a value', 'GET', '/', ['x', 'a\rb'], 'none', 0],
    ['LF in a value', 'GET', '/', ['x', 'a\nb'], 'none', 0],
    ['NUL in a value', 'GET', '/', ['x', 'a\0b'], 'none', 0],
    ['DEL in a value', 'GET', '/', ['x', 'a\x7fb'], 'none', 0],
    ['a character above latin1 in a value', 'GET', '/', ['x', '\u0100'], 'none', 0],
    ['a space in a name', 'GET', '/', ['x a', '1'], 'none', 0],
    ['a colon in a name', 'GET', '/', ['x:', '1'], 'none', 0],
    ['an empty name', 'GET', '/', ['', '1'], 'none', 0],
    ['a space in the method', 'G T', '/', [], 'none', 0],
    ['an empty method', '', '/', [], 'none', 0],
    ['a space in the target', 'GET', '/a b', [], 'none', 0],
    ['a tab in the target', 'GET', '/a\tb', [], 'none', 0],
    ['an empty target', 'GET', '', [], 'none', 0],
    ['conflicting Content-Length values', 'POST', '/', ['content-length', '1', 'Content-Length', '01'], 'buffer', 1],
    ['a non-numeric Content-Length', 'POST', '/', ['content-length', 'x'], 'stream', 0],
    ['a negative Content-Length', 'POST', '/', ['content-length', '-1'], 'stream', 0],
    ['a Content-Length that does not match the Buffer', 'POST', '/', ['content-length', '4'], 'buffer', 5],
  ])('refuses %s with PYSERVE_UPSTREAM_INVALID_REQUEST', (_name, method, target, headers, body, length) => {
    let thrown: unknown;
    try {
      serializeHead(method, target, headers, body, length);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(UpstreamError);
    expect((thrown as UpstreamError).code).toBe(UPSTREAM_CODES.invalidRequest);
  });
});

// Mutations of valid responses (a byte replaced, inserted or removed, from a
// fixed-seed generator, favouring the bytes framing depends on): whatever
// the verdict, it is the same at every split.
describe('ResponseParser: mutated responses, same verdict at every split', () => {
  const seeds = [
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: 1\r\n\r\n',
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n',
    'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok',
  ];
  const cases = mutatedInputs(seeds, 400, 0x0b5e55ed);

  it('400 mutations: the outcome does not depend on the split', () => {
    let refused = 0;
    cases.forEach((input, i) => {
      // Half of them end with the upstream closing the connection.
      const r = parseEverySplit(input, { eof: i % 2 === 0 });
      if (r.error !== undefined) refused++;
    });
    expect(refused).toBeGreaterThan(50);
    expect(refused).toBeLessThan(cases.length);
  });
});

// The head's field lines are read in one pass (parseHead), with lineParts
// (the checks one by one) deciding every line that pass does not take: the
// two must agree on every line, accepted or refused.
describe('ResponseParser: the one-pass field scan agrees with lineParts', () => {
  const seeds = [
    'HTTP/1.1 200 OK\r\nServer: nginx\r\nX-A:  a b \t\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nContent-Length: 5\r\n\r\nhello',
    'HTTP/1.1 404 Not Found\r\nSet-Cookie: a=1\r\nX-Obs: caf\xe9 \x80\xff\r\nX-Tab: a\tb\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5\r\nX:\r\nX-E: \t \r\nContent-Length: 0\r\n\r\n',
  ];
  const cases = mutatedInputs(seeds, 3_000, 0x5ca1ab1e);

  it('3,000 mutations: the same names and values, or the same error', () => {
    // Heads whose status line passes (a final status): their field lines are read next.
    const statusLineOk = (line: string): boolean =>
      /^HTTP\/1\.[01] [2-9]\d\d( |$)/.test(line) && ![...line.slice(12)].some((ch) => (ch < ' ' && ch !== '\t') || ch === '\x7f' || ch > '\xff');
    const parse = (input: string): string[] | string | undefined => {
      let got: string[] | string | undefined;
      const p = new ResponseParser(16_384);
      p.begin({
        onHead: (h) => {
          const lines = h.fieldLines;
          if (lines === undefined) return;
          const { text, offsets: o } = lines;
          got = [];
          for (let i = 0; i < o.length; i += 4) got.push(text.slice(o[i], o[i + 1]), text.slice(o[i + 2], o[i + 3]));
        },
        onBody: () => undefined,
        onComplete: () => undefined,
      }, false);
      try {
        p.execute(Buffer.from(input, 'latin1'));
      } catch (err) {
        got = (err as Error).message;
      }
      return got;
    };
    const { accepted, refused } = expectScanAgreesWithLineParts(cases, statusLineOk, lineParts, parse);
    expect(accepted).toBeGreaterThan(500);
    expect(refused).toBeGreaterThan(500);
  });
});

describe('sameTokenBytes: the response parser\'s name comparisons on bytes', () => {
  it('matches a lower-case name in any case, and nothing with one character changed or another length', () => {
    for (const name of ['connection', 'keep-alive', 'content-length', 'transfer-encoding', 'date', 'te', 'x-request-id', 'http2-settings']) {
      const lower = tokenBytes(name);
      for (const spelled of [name, name.toUpperCase(), name.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase())]) {
        expect(sameTokenBytes(bytes(`xx${spelled}:`), 2, spelled.length, lower), spelled).toBe(true);
      }
      for (let i = 0; i < name.length; i++) {
        const changed = `${name.slice(0, i)}_${name.slice(i + 1)}`;
        expect(sameTokenBytes(bytes(`xx${changed}:`), 2, changed.length, lower), changed).toBe(false);
      }
      expect(sameTokenBytes(bytes(`xx${name}s:`), 2, name.length + 1, lower)).toBe(false);
    }
  });

  it('framing fields in any spelling frame the response', () => {
    const r = parseEverySplit('HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 2\r\ncOnNeCtIoN: CLOSE\r\n\r\nokextra');
    expect(r).toMatchObject({ body: 'ok', keepAlive: false, done: true, completes: 1 });
    expect(r.heads[0]!.headers).toEqual({ 'content-length': '2', connection: 'CLOSE' });
  });
});
