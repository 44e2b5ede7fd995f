// The traffic server's HTTP/1.1 request parser (dataplane/server/h1/
// request-parser.ts): every input is parsed whole, byte by byte, and split
// in two at every offset, and all must agree (a strict parser that decides
// differently depending on how TCP cut the bytes can be smuggled past).
// Valid requests: methods and target forms, the keep-alive rules, the
// headers object node:http handlers expect, Content-Length and chunked
// bodies, pipelining. Refusals: each with the status the server answers.
import { describe, expect, it } from 'vitest';
import { bytes, mutatedInputs, parseEverySplit as everySplit } from '../helpers/every-split.ts';
import { expectScanAgreesWithLineParts } from '../helpers/field-scan.ts';
import { lineParts, RequestError, RequestParser } from '../../dataplane/server/h1/request-parser.ts';
import type { RequestHead } from '../../dataplane/server/h1/request-parser.ts';
import { knownName } from '../../dataplane/http1/known-names.ts';

/** Everything a parser reported for one request. */
interface Parsed {
  heads: RequestHead[];
  body: string;
  /** onComplete calls. */
  completes: number;
  /** Bytes `execute` said belonged to the request, summed over the pieces (-1 after an error). */
  used: number;
  /** The refusal, as `status: message`. */
  error: string | undefined;
  /** The parser's own view at the end. */
  done: boolean;
}

interface Limits {
  maxHeadBytes?: number;
  maxUriBytes?: number;
}

/** Feed `pieces` to a fresh parser, as a connection does: stop once the request is complete. */
function parse(pieces: Buffer[], limits: Limits = {}): Parsed {
  const parser = new RequestParser(limits.maxHeadBytes ?? 16_384, limits.maxUriBytes ?? 1_024);
  const out: Parsed = { heads: [], body: '', completes: 0, used: 0, error: undefined, done: false };
  parser.begin({
    onHead: (h) => out.heads.push(h),
    onBody: (c) => (out.body += c.toString('latin1')),
    onComplete: () => out.completes++,
  });
  try {
    for (const piece of pieces) {
      if (parser.done) break;
      const n = parser.execute(piece);
      expect(n).toBeLessThanOrEqual(piece.length);
      // Fewer bytes than given only once the request is complete.
      if (n < piece.length) expect(parser.done).toBe(true);
      out.used += n;
    }
  } catch (err) {
    expect(err).toBeInstanceOf(RequestError);
    out.error = `${(err as RequestError).status}: ${(err as Error).message}`;
    // How far it got before throwing depends on the split; the rest must not.
    out.used = -1;
  }
  out.done = parser.done;
  return out;
}

/** Parse whole, byte by byte, and split at every offset; all must agree. Returns the whole-input result. */
const parseEverySplit = (input: string, limits: Limits = {}): Parsed => everySplit(input, (pieces) => parse(pieces, limits));

/** The status a request is refused with, the same at every split. */
function refusal(input: string, limits: Limits = {}): number | undefined {
  const r = parseEverySplit(input, limits);
  expect(r.heads.length === 0 || r.error !== undefined).toBe(true);
  return r.error === undefined ? undefined : Number(r.error.split(':')[0]);
}

/** The one head of a valid bodiless request. */
function head(input: string, limits: Limits = {}): RequestHead {
  const r = parseEverySplit(input, limits);
  expect(r).toMatchObject({ error: undefined, completes: 1, done: true, used: input.length });
  expect(r.heads).toHaveLength(1);
  return r.heads[0]!;
}

describe('RequestParser: valid requests, at every split', () => {
  it('methods: standard ones and any other token, as sent', () => {
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'PROPFIND', 'M-SEARCH', 'get', "X!#$%&'*+.^_`|~1"]) {
      expect(head(`${method} /x HTTP/1.1\r\nHost: h\r\n\r\n`).method).toBe(method);
    }
  });

  it('request targets: origin-form with query, absolute-form, asterisk-form, authority-form, raw UTF-8', () => {
    const target = (t: string, method = 'GET'): string => head(`${method} ${t} HTTP/1.1\r\nHost: h\r\n\r\n`).url;
    expect(target('/a/b?c=d&e=%20f#frag')).toBe('/a/b?c=d&e=%20f#frag');
    expect(target('http://example.com:8080/a?b')).toBe('http://example.com:8080/a?b');
    expect(target('*', 'OPTIONS')).toBe('*');
    // Parsed; the connection answers CONNECT with 405.
    expect(target('example.com:443', 'CONNECT')).toBe('example.com:443');
    expect(target('/caf\xc3\xa9')).toBe('/caf\xc3\xa9');
  });

  it('the head: version, rawHeaders as received (names in their case, values trimmed), hasBody', () => {
    const h = head('GET /p HTTP/1.1\r\nHost: a.test\r\nX-Mixed-Case:  \t v a l \t\r\nx-empty:\r\n\r\n');
    expect(h).toEqual({
      method: 'GET', url: '/p', minor: 1, keepAlive: true, hasBody: false,
      headers: { host: 'a.test', 'x-mixed-case': 'v a l', 'x-empty': '' },
      rawHeaders: ['Host', 'a.test', 'X-Mixed-Case', 'v a l', 'x-empty', ''],
      // What a proxy passes on: the lines but Host, as they came.
      forwardLines: 'X-Mixed-Case:  \t v a l \t\r\nx-empty:\r\n',
    });
  });

  it("headers in node's shape: lower-case keys, repeats joined, cookie with '; ', set-cookie an array, single-valued fields keep the first", () => {
    const h = head('GET / HTTP/1.1\r\nHost: first\r\nX-A: 1\r\nx-a: 2\r\nX-A: 3\r\nCookie: a=1\r\ncookie: b=2\r\n'
      + 'Set-Cookie: s=1\r\nSET-COOKIE: s=2\r\nUser-Agent: ua1\r\nuser-agent: ua2\r\nAuthorization: one\r\nAuthorization: two\r\n'
      + 'Content-Type: text/a\r\nContent-Type: text/b\r\nReferer: r1\r\nReferer: r2\r\nHost: second\r\nAccept: a\r\nAccept: b\r\n\r\n');
    expect(h.headers).toEqual({
      host: 'first', 'x-a': '1, 2, 3', cookie: 'a=1; b=2', 'set-cookie': ['s=1', 's=2'], 'user-agent': 'ua1',
      authorization: 'one', 'content-type': 'text/a', referer: 'r1', accept: 'a, b',
    });
    // rawHeaders keeps every line, in order and case.
    expect(h.rawHeaders.filter((_, i) => i % 2 === 0)).toEqual(['Host', 'X-A', 'x-a', 'X-A', 'Cookie', 'cookie', 'Set-Cookie', 'SET-COOKIE', 'User-Agent', 'user-agent',
      'Authorization', 'Authorization', 'Content-Type', 'Content-Type', 'Referer', 'Referer', 'Host', 'Accept', 'Accept']);
    expect(h.rawHeaders[h.rawHeaders.indexOf('Host', 1) + 1]).toBe('second');
    // A single Set-Cookie is an array too, as in node:http.
    expect(head('GET / HTTP/1.1\r\nHost: h\r\nSet-Cookie: one\r\n\r\n').headers['set-cookie']).toEqual(['one']);
  });

  it('keep-alive: HTTP/1.1 keeps unless Connection lists close; HTTP/1.0 closes unless it lists keep-alive', () => {
    const keep = (version: string, connection?: string): [0 | 1, boolean] => {
      const h = head(`GET / ${version}\r\nHost: h\r\n${connection === undefined ? '' : `Connection: ${connection}\r\n`}\r\n`);
      return [h.minor, h.keepAlive];
    };
    expect(keep('HTTP/1.1')).toEqual([1, true]);
    expect(keep('HTTP/1.1', 'keep-alive')).toEqual([1, true]);
    expect(keep('HTTP/1.1', 'close')).toEqual([1, false]);
    expect(keep('HTTP/1.1', 'Upgrade, CLOSE')).toEqual([1, false]);
    expect(keep('HTTP/1.0')).toEqual([0, false]);
    expect(keep('HTTP/1.0', 'keep-alive')).toEqual([0, true]);
    expect(keep('HTTP/1.0', 'x-foo, Keep-Alive')).toEqual([0, true]);
    expect(keep('HTTP/1.0', 'close')).toEqual([0, false]);
    // Two Connection fields are one list.
    expect(head('GET / HTTP/1.1\r\nHost: h\r\nConnection: x-foo\r\nConnection: close\r\n\r\n').keepAlive).toBe(false);
  });

  it('HTTP/1.0 without Host is accepted', () => {
    expect(head('GET / HTTP/1.0\r\n\r\n')).toMatchObject({ minor: 0, headers: {}, rawHeaders: [] });
  });

  it('empty lines before the request line are skipped, and counted as used', () => {
    const input = '\r\n\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n';
    expect(head(input).url).toBe('/a');
  });

  it('after only empty lines the parser has not started a request', () => {
    const parser = new RequestParser(1024, 512);
    parser.begin({ onHead: () => {}, onBody: () => {}, onComplete: () => {} });
    expect(parser.execute(bytes('\r\n\r\n'))).toBe(4);
    // (`started` is what tells an idle connection from one amid a request.)
    expect([parser.started, parser.done]).toEqual([false, false]);
    parser.execute(bytes('G'));
    expect([parser.started, parser.done]).toEqual([true, false]);
    parser.execute(bytes('ET / HTTP/1.1\r\nHost: h\r\n\r\n'));
    expect(parser.done).toBe(true);
  });

  it('a Content-Length body, stopping exactly at its end', () => {
    const request = 'POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world';
    const r = parseEverySplit(`${request}GET / HTTP/1.1\r\n`);
    expect(r).toMatchObject({ body: 'hello world', completes: 1, used: request.length, error: undefined, done: true });
    expect(r.heads[0]).toMatchObject({ method: 'POST', hasBody: true, headers: { 'content-length': '11' } });
  });

  it('Content-Length: 0 is a request without body, complete at its head', () => {
    const request = 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n';
    const r = parseEverySplit(`${request}next`);
    expect(r).toMatchObject({ body: '', completes: 1, used: request.length, done: true });
    expect(r.heads[0]!.hasBody).toBe(false);
  });

  it('agreeing duplicate Content-Length values are accepted and reported once', () => {
    for (const fields of ['Content-Length: 5\r\nContent-Length: 5\r\n', 'Content-Length: 5, 5\r\n', 'Content-Length: 5\r\ncontent-length: 5,5\r\n']) {
      const r = parseEverySplit(`PUT / HTTP/1.1\r\nHost: h\r\n${fields}\r\nabcde`);
      expect(r).toMatchObject({ body: 'abcde', completes: 1, error: undefined });
      expect(r.heads[0]!.headers['content-length']).toBe('5');
    }
  });

  it('a chunked body with extensions, BWS before them, upper- and lower-case hex and trailers, stopping exactly at its end', () => {
    const request = 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n'
      + '5;a=b\r\nhello\r\n6 \t; q="x;y"\r\n world\r\nA\r\n0123456789\r\nb\r\n' + 'x'.repeat(11) + '\r\n'
      + '0;last\r\nX-T: 1\r\nX-U: 2\r\n\r\n';
    const r = parseEverySplit(`${request}GET / HTTP/1.1\r\n`);
    expect(r).toMatchObject({ body: `hello world0123456789${'x'.repeat(11)}`, completes: 1, used: request.length, error: undefined, done: true });
    expect(r.heads[0]).toMatchObject({ hasBody: true, headers: { 'transfer-encoding': 'chunked' } });
  });

  it('an empty chunked body', () => {
    const r = parseEverySplit('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n');
    expect(r).toMatchObject({ body: '', completes: 1, error: undefined, done: true });
  });

  it('a body with every byte value passes through unchanged', () => {
    const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('');
    const r = parseEverySplit(`POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n${all}\r\n0\r\n\r\n`);
    expect(r.body).toBe(all);
    expect(parseEverySplit(`POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 256\r\n\r\n${all}`).body).toBe(all);
  });

  it('two pipelined requests in one buffer: execute returns the bytes of the first only; the second parses after begin()', () => {
    const first = 'POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc';
    const second = 'GET /2 HTTP/1.1\r\nHost: h\r\n\r\n';
    const r = parseEverySplit(first + second);
    expect(r).toMatchObject({ used: first.length, body: 'abc', completes: 1 });
    expect(r.heads.map((h) => h.url)).toEqual(['/1']);

    const seen: string[] = [];
    const events = { onHead: (h: RequestHead) => seen.push(`head ${h.url}`), onBody: (c: Buffer) => seen.push(`body ${c.toString()}`), onComplete: () => seen.push('complete') };
    const stream = bytes(first + second);
    const parser = new RequestParser(1024, 512);
    parser.begin(events);
    const n = parser.execute(stream);
    expect(n).toBe(first.length);
    parser.begin(events);
    expect(parser.execute(stream.subarray(n))).toBe(second.length);
    expect(parser.done).toBe(true);
    expect(seen).toEqual(['head /1', 'body abc', 'complete', 'head /2', 'complete']);
  });

  it('two pipelined bodiless requests: only the first is reported', () => {
    const first = 'GET /1 HTTP/1.1\r\nHost: h\r\n\r\n';
    const r = parseEverySplit(`${first}GET /2 HTTP/1.1\r\nHost: h\r\n\r\n`);
    expect(r).toMatchObject({ used: first.length, completes: 1 });
    expect(r.heads.map((h) => h.url)).toEqual(['/1']);
  });

  it('an incomplete request is neither done nor refused', () => {
    expect(parseEverySplit('GET / HTTP/1.1\r\nHost: h\r\n')).toMatchObject({ heads: [], completes: 0, error: undefined, done: false });
    expect(parseEverySplit('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc')).toMatchObject({ body: 'abc', completes: 0, error: undefined, done: false });
    expect(parseEverySplit('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n')).toMatchObject({ body: 'abc', completes: 0, done: false });
  });

  it('limits: a target of exactly maxUriBytes and a head of exactly maxHeadBytes are accepted', () => {
    const target = `/${'a'.repeat(99)}`;
    expect(head(`GET ${target} HTTP/1.1\r\nHost: h\r\n\r\n`, { maxUriBytes: 100 }).url).toBe(target);
    const base = 'GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n';
    const exact = `GET / HTTP/1.1\r\nHost: h\r\nX: ${'x'.repeat(200 - base.length)}\r\n\r\n`;
    expect(exact.length).toBe(200);
    expect(head(exact, { maxHeadBytes: 200 }).headers.x).toHaveLength(200 - base.length);
  });
});

describe('RequestParser: refusals with their status, at every split', () => {
  const GET = 'GET / HTTP/1.1\r\nHost: h\r\n';
  const CHUNKED = 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n';
  const cases: [string, string, number][] = [
    ['a bare LF ending the request line', 'GET / HTTP/1.1\nHost: h\r\n\r\n', 400],
    ['a bare LF ending a header line', `${GET}X-A: 1\nX-B: 2\r\n\r\n`, 400],
    ['bare LF line ends throughout', 'GET / HTTP/1.1\nHost: h\n\n', 400],
    ['a bare CR in a header value', `${GET}X-A: 1\r2\r\n\r\n`, 400],
    ['obs-fold', `${GET}X-A: 1\r\n folded\r\n\r\n`, 400],
    ['obs-fold with a colon', `${GET}X-A: 1\r\n\tx: y\r\n\r\n`, 400],
    ['a space before the colon', `${GET}X-A : 1\r\n\r\n`, 400],
    ['a space in a header name', `${GET}X A: 1\r\n\r\n`, 400],
    ['an empty header name', `${GET}: 1\r\n\r\n`, 400],
    ['a header line without a colon', `${GET}X-A 1\r\n\r\n`, 400],
    ['a non-ASCII header name', `${GET}X-\xe9: 1\r\n\r\n`, 400],
    ['a NUL in a value', `${GET}X-A: a\0b\r\n\r\n`, 400],
    ['a control character in a value', `${GET}X-A: a\x01b\r\n\r\n`, 400],
    ['a DEL in a value', `${GET}X-A: a\x7fb\r\n\r\n`, 400],
    ['an escape in a value', `${GET}X-A: \x1b[31m\r\n\r\n`, 400],
    ['a method with a non-token character', 'G(T / HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['a method with a non-ASCII character', 'G\xc9T / HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['an empty method', ' / HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['a request line with no target', 'GET HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['two spaces before the target', 'GET  / HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['a space inside the target', 'GET /a b HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['a tab in the target', 'GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['a control character in the target', 'GET /a\x01b HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['a DEL in the target', 'GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['a NUL in the target', 'GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: h\r\n\r\n', 505],
    ['HTTP/9.9', 'GET / HTTP/9.9\r\nHost: h\r\n\r\n', 505],
    ['HTTP/1.2', 'GET / HTTP/1.2\r\nHost: h\r\n\r\n', 400],
    ['HTTP/1.x', 'GET / HTTP/1.x\r\nHost: h\r\n\r\n', 400],
    ['HTTP/1.10', 'GET / HTTP/1.10\r\nHost: h\r\n\r\n', 400],
    ['HTTP/10.0', 'GET / HTTP/10.0\r\nHost: h\r\n\r\n', 400],
    ['http/1.1 in lower case', 'GET / http/1.1\r\nHost: h\r\n\r\n', 400],
    ['HTTP/1.1 with a trailing space', 'GET / HTTP/1.1 \r\nHost: h\r\n\r\n', 400],
    ['no version (HTTP/0.9 style)', 'GET /\r\nHost: h\r\n\r\n', 400],
    ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\nX-A: 1\r\n\r\n', 400],
    ['Transfer-Encoding and Content-Length', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n', 400],
    ['Content-Length and Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc', 400],
    ['Transfer-Encoding in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', 400],
    ['chunked not the final coding', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 400],
    ['a Transfer-Encoding without chunked', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n', 400],
    ['an empty Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n', 400],
    ['gzip, chunked', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501],
    ['gzip then chunked in two fields', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n', 501],
    ['conflicting Content-Length fields', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', 400],
    ['a conflicting Content-Length list', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\nabcd', 400],
    ['a Content-Length and its zero-padded twin', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 03\r\n\r\nabc', 400],
    ['a non-numeric Content-Length', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n', 400],
    ['a negative Content-Length', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n', 400],
    ['a signed Content-Length', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc', 400],
    ['a hex Content-Length', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\nabc', 400],
    ['an empty Content-Length', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n', 400],
    ['a Content-Length of 16 digits', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000000000\r\n\r\n', 400],
    ['a non-hex chunk size', `${CHUNKED}zz\r\nok\r\n0\r\n\r\n`, 400],
    ['an empty chunk size', `${CHUNKED}\r\nok\r\n0\r\n\r\n`, 400],
    ['a negative chunk size', `${CHUNKED}-2\r\nok\r\n0\r\n\r\n`, 400],
    ['a 0x chunk size', `${CHUNKED}0x2\r\nok\r\n0\r\n\r\n`, 400],
    ['a space after the chunk size without extension', `${CHUNKED}2 \r\nok\r\n0\r\n\r\n`, 400],
    ['a chunk size of 14 hex digits', `${CHUNKED}${'0'.repeat(13)}1\r\nx\r\n0\r\n\r\n`, 400],
    ['chunk data longer than its size', `${CHUNKED}3\r\nabcd\r\n0\r\n\r\n`, 400],
    ['chunk data not followed by CRLF', `${CHUNKED}3\r\nabcX\r\n0\r\n\r\n`, 400],
    ['a bare LF after chunk data', `${CHUNKED}3\r\nabc\n0\r\n\r\n`, 400],
    ['a bare LF in a chunk-size line', `${CHUNKED}3\nabc\r\n0\r\n\r\n`, 400],
    ['a stray CR in a chunk-size line', `${CHUNKED}3\r\r\nabc\r\n0\r\n\r\n`, 400],
    ['a chunk line over 4096 bytes', `${CHUNKED}3;${'e'.repeat(5_000)}\r\nabc\r\n0\r\n\r\n`, 413],
    ['a trailer without colon', `${CHUNKED}3\r\nabc\r\n0\r\nbad trailer\r\n\r\n`, 400],
    ['a trailer with a control character', `${CHUNKED}3\r\nabc\r\n0\r\nX-T: a\x01\r\n\r\n`, 400],
  ];

  it.each(cases)('%s', (_name, input, status) => {
    expect(refusal(input)).toBe(status);
  });

  it('a stray CR before the request line (a CR not followed by LF) is refused', () => {
    // Whole here; at every split below.
    expect(parse([bytes('\rGET / HTTP/1.1\r\nHost: h\r\n\r\n')]).error).toMatch(/^400: /);
    expect(parse([bytes('\r\n\rX / HTTP/1.1\r\nHost: h\r\n\r\n')]).error).toMatch(/^400: /);
  });

  it('a head of bare-LF lines is refused as soon as it is seen, not left waiting for a CRLFCRLF', () => {
    expect(parse([bytes('GET / HTTP/1.1\nHost: h\n')]).error).toMatch(/^400: /);
    expect(parse([bytes('GET / HTTP/1.1\r\nHost: h\n')]).error).toMatch(/^400: /);
  });

  it('414 for a request target over maxUriBytes, in a complete head and in one still arriving', () => {
    const limits = { maxUriBytes: 100 };
    expect(refusal(`GET /${'a'.repeat(100)} HTTP/1.1\r\nHost: h\r\n\r\n`, limits)).toBe(414);
    // The head has not ended (not even the request line): refused once the line is clearly too long.
    const incomplete = `GET /${'a'.repeat(200)}`;
    expect(refusal(incomplete, limits)).toBe(414);
    // The same line, shorter: still waiting.
    expect(parseEverySplit(`GET /${'a'.repeat(99)}`, limits)).toMatchObject({ error: undefined, heads: [], done: false });
    // A long request line over maxHeadBytes: 414 (the line is what is too long), not 431.
    expect(refusal(`GET /${'a'.repeat(300)} HTTP/1.1\r\nHost: h\r\n\r\n`, { maxUriBytes: 100, maxHeadBytes: 256 })).toBe(414);
    expect(refusal(`GET /${'a'.repeat(300)}`, { maxUriBytes: 100, maxHeadBytes: 256 })).toBe(414);
  });

  it('431 for a head over maxHeadBytes, complete or not, with a short request line', () => {
    const limits = { maxHeadBytes: 200, maxUriBytes: 100 };
    const base = 'GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n';
    expect(refusal(`GET / HTTP/1.1\r\nHost: h\r\nX: ${'x'.repeat(201 - base.length)}\r\n\r\n`, limits)).toBe(431);
    expect(refusal(`GET / HTTP/1.1\r\nHost: h\r\nX: ${'x'.repeat(300)}`, limits)).toBe(431);
    // Many short fields add up too.
    expect(refusal(`GET / HTTP/1.1\r\nHost: h\r\n${'X-A: 1\r\n'.repeat(40)}\r\n`, limits)).toBe(431);
  });

  it('trailers over maxHeadBytes: 431', () => {
    expect(refusal(`${CHUNKED}3\r\nabc\r\n0\r\n${'X-T: 1234567890\r\n'.repeat(40)}\r\n`, { maxHeadBytes: 512 })).toBe(431);
  });

  it('RequestError carries the status and a message', () => {
    const r = parse([bytes('GET / HTTP/2.0\r\nHost: h\r\n\r\n')]);
    expect(r.error).toBe('505: HTTP/2.0 is not supported on this connection');
    const err = new RequestError(413, 'x');
    expect([err.status, err.name, err.message, err instanceof Error]).toEqual([413, 'RequestError', 'x', true]);
  });
});

// Regressions: inputs whose outcome once depended on where the bytes were
// split. Each is parsed whole, byte by byte and at every split; all agree.
describe('RequestParser: the same outcome at every split', () => {
  const CHUNKED_POST = 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n';

  it('a stray CR before the request line is refused at every split', () => {
    expect(refusal('\rGET / HTTP/1.1\r\nHost: h\r\n\r\n')).toBe(400);
  });

  it('a long method with a target within maxUriBytes is accepted at every split', () => {
    const input = `${'M'.repeat(60)} /${'a'.repeat(90)} HTTP/1.1\r\nHost: h\r\n\r\n`;
    expect(head(input, { maxUriBytes: 100 }).method).toHaveLength(60);
  });

  it('a chunk-size line of exactly 4096 bytes is accepted at every split', () => {
    const line = `1;${'e'.repeat(4_094)}`;
    expect(line).toHaveLength(4_096);
    const r = parseEverySplit(`${CHUNKED_POST}${line}\r\nx\r\n0\r\n\r\n`);
    expect(r).toMatchObject({ error: undefined, body: 'x', completes: 1 });
  });

  it('a trailer line over 4096 bytes within maxHeadBytes is accepted at every split', () => {
    const r = parseEverySplit(`${CHUNKED_POST}1\r\nx\r\n0\r\nX-T: ${'t'.repeat(5_000)}\r\n\r\n`);
    expect(r).toMatchObject({ error: undefined, body: 'x', completes: 1 });
  });

  it('chunk data far longer than its size gets 400 at every split', () => {
    expect(refusal(`${CHUNKED_POST}1\r\nx${'y'.repeat(5_000)}\r\n0\r\n\r\n`)).toBe(400);
  });
});

// Names that are Object.prototype members are plain fields (as in node:http), and __proto__ is refused.
describe('RequestParser: header names on Object.prototype', () => {
  it('a __proto__ header is refused with 400', () => {
    expect(refusal('GET / HTTP/1.1\r\nHost: h\r\n__proto__: {}\r\n\r\n')).toBe(400);
  });

  it('a __proto__ header does not change the prototype of headers', () => {
    const r = parse([bytes('GET / HTTP/1.1\r\nHost: h\r\n__proto__: {}\r\n\r\n')]);
    if (r.error !== undefined) {
      expect(r.error).toMatch(/^400: /);
      return;
    }
    expect(Object.getPrototypeOf(r.heads[0]!.headers)).toBe(Object.prototype);
    expect(Object.keys(r.heads[0]!.headers)).toEqual(['host']);
  });

  it("a 'constructor' header is a plain field, as in node:http (not joined to Object.prototype.constructor)", () => {
    const h = head('GET / HTTP/1.1\r\nHost: h\r\nConstructor: c\r\n\r\n');
    expect(h.headers.constructor).toBe('c');
  });

  it('two Host fields: headers.host is the first, rawHeaders has both (the request handler answers 400 from rawHeaders)', () => {
    const h = head('GET / HTTP/1.1\r\nHost: a.test\r\nhost: b.test\r\n\r\n');
    expect(h.headers.host).toBe('a.test');
    expect(h.rawHeaders).toEqual(['Host', 'a.test', 'host', 'b.test']);
  });
});

// Mutations of valid requests (a byte replaced, inserted or removed, at a
// place and with a value from a fixed-seed generator): whatever the verdict,
// it is a RequestError or a parse, and it is the same at every split. The
// inserted bytes favour the ones framing depends on (CR, LF, space, colon,
// semicolon, digits), where split-dependent verdicts hide.
describe('RequestParser: mutated requests, same verdict at every split', () => {
  const seeds = [
    'GET /a?b=c HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n',
    'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello',
    'POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: 1\r\n\r\n',
    '\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
  ];
  const cases = mutatedInputs(seeds, 400, 0x5eed1234);

  it('400 mutations: errors are RequestErrors, and the outcome does not depend on the split', () => {
    let refused = 0;
    for (const input of cases) {
      const r = parseEverySplit(input, { maxUriBytes: 64 });
      if (r.error !== undefined) refused++;
    }
    // Both kinds of outcome occur, or the mutations test nothing.
    expect(refused).toBeGreaterThan(50);
    expect(refused).toBeLessThan(cases.length);
  });
});

// Field lines are read in one pass (http1/syntax.ts FieldLineScan), with
// lineParts (the checks one by one) deciding every line that pass does not
// take: the two must agree on every line, accepted or refused.
describe('RequestParser: the one-pass field scan agrees with lineParts', () => {
  const seeds = [
    'GET / HTTP/1.1\r\nHost: h\r\nX-A:  a b \t\r\nConnection: keep-alive, X-Hop\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n',
    'POST /p HTTP/1.1\r\nHost: h\r\nX-Obs: caf\xe9 \x80\xff\r\nX-Tab: a\tb\r\nContent-Length: 0\r\n\r\n',
    'GET / HTTP/1.0\r\nX:\r\nX-E: \t \r\nUser-Agent: t/1\r\n\r\n',
  ];
  const cases = mutatedInputs(seeds, 3_000, 0x5eed1e55);

  it('3,000 mutations: the same names and values, or the same error', () => {
    // Heads whose request line passes: their field lines are read next.
    const requestLineOk = (line: string): boolean => /^(GET|POST) \/[!-~]* HTTP\/1\.[01]$/.test(line);
    const parse = (input: string): string[] | string | undefined => {
      let got: string[] | string | undefined;
      const parser = new RequestParser(16_384, 4_096);
      parser.begin({ onHead: (h) => (got = h.rawHeaders), onBody: () => undefined, onComplete: () => undefined });
      try {
        parser.execute(Buffer.from(input, 'latin1'));
      } catch (err) {
        got = (err as Error).message;
      }
      return got;
    };
    const { accepted, refused } = expectScanAgreesWithLineParts(cases, requestLineOk, lineParts, parse);
    expect(accepted).toBeGreaterThan(500);
    expect(refused).toBeGreaterThan(500);
  });
});

describe('knownName: common field names as constants', () => {
  const at = (name: string): [Buffer, number, number] => {
    const b = bytes(`xx${name}:`);
    return [b, 2, name.length];
  };
  // Upper, lower and mixed case, as clients send them.
  const spellings = (name: string): string[] => [name, name.toUpperCase(), name.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase())];

  it('gives the lower-case name for a common one in any case, the same string every time', () => {
    for (const name of ['host', 'user-agent', 'accept', 'content-length', 'x-forwarded-for', 'sec-websocket-key', 'te', 'cookie']) {
      for (const spelled of spellings(name)) expect(knownName(...at(spelled)), spelled).toBe(name);
    }
  });

  it('nothing for other names, or a common name with any one character changed', () => {
    for (const name of ['x-custom', 'hosts', 'hos', 'content-lengths', 'a', 'x-b3-traceid']) expect(knownName(...at(name)), name).toBeUndefined();
    for (const name of ['host', 'user-agent', 'content-length', 'x-request-id']) {
      for (let i = 0; i < name.length; i++) {
        for (const c of ['x', '_', '1', '!']) {
          const changed = name.slice(0, i) + c + name.slice(i + 1);
          if (changed.toLowerCase() === name) continue;
          expect(knownName(...at(changed)), changed).toBeUndefined();
        }
      }
    }
  });

  it('the parser keys headers by it and keeps the spelling in rawHeaders', () => {
    const r = parseEverySplit('GET / HTTP/1.1\r\nHOST: h\r\nUser-Agent: u\r\nX-Custom: c\r\n\r\n');
    expect(r.heads[0]!.headers).toEqual({ host: 'h', 'user-agent': 'u', 'x-custom': 'c' });
    expect(r.heads[0]!.rawHeaders).toEqual(['HOST', 'h', 'User-Agent', 'u', 'X-Custom', 'c']);
  });
});
