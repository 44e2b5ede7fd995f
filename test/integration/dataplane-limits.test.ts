// Limits and timeouts of the real dataplane process, mostly over raw sockets
// so each request is exactly what is being tested: header, URI and body size
// (431, 414, 413 by Content-Length, by Expect: 100-continue and by counting
// a chunked body), slowloris and slow-body timeouts (408), keep-alive idle,
// whole-request and upstream timeouts (504), max connections, and malformed
// requests (400, connection closed). The process must survive all of it.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { curl, rawExchange } from '../helpers/http.ts';
import { applySnapshot, forward, prefix, snapshot, vhost } from '../helpers/snapshots.ts';

let dp: DataplaneChild;
let echo: Backend;
let blackhole: ChildProcess;
let blackholePort: number;
let blackholeFill: Socket;
let tmp: string;

// A listener whose accept queue is full and never drained: connects to it
// hang until the connector gives up, which is how a connect timeout is
// provoked without leaving the loopback interface. Node always accepts, so
// Python holds the socket.
async function startBlackhole(): Promise<void> {
  blackhole = spawn('python3', ['-c', [
    'import socket, time',
    's = socket.socket()',
    's.bind(("127.0.0.1", 0))',
    's.listen(0)',
    'print(s.getsockname()[1], flush=True)',
    'time.sleep(3600)',
  ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: blackhole.stdout! }), 'line')) as [string];
  blackholePort = Number(line);
  // One connection fills a backlog of 0; later SYNs are dropped.
  blackholeFill = connect(blackholePort, '127.0.0.1');
  await once(blackholeFill, 'connect');
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pyserve-limits-'));
  [dp, echo] = await Promise.all([
    spawnDataplane({ args: [
      '--max-header-bytes', '4096',
      '--max-uri-bytes', '1024',
      '--max-body-bytes', '1000',
      '--client-header-timeout-ms', '1000',
      '--client-body-timeout-ms', '1000',
      '--keepalive-timeout-ms', '1000',
    ] }),
    startBackend('echo'),
    startBlackhole(),
  ]);
  await applySnapshot(dp.adminUrl, snapshot(1, [vhost('all', ['*'], [
    { ...forward('big', prefix('/big'), 'echo'), limits: { maxBodyBytes: 0 } },
    { ...forward('tiny', prefix('/tiny'), 'echo'), limits: { maxBodyBytes: 10 } },
    forward('whole', prefix('/whole'), 'echo', { requestMs: 300 }),
    forward('slowresp', prefix('/slowresp'), 'echo', { upstreamResponseMs: 300 }),
    forward('blackhole', prefix('/blackhole'), 'blackhole', { upstreamConnectMs: 300 }),
    forward('echo', prefix('/'), 'echo'),
  ])], {
    echo: [echo.endpoint()],
    blackhole: [{ address: '127.0.0.1', port: blackholePort, ready: true, serving: true, terminating: false }],
  }));
});

afterAll(async () => {
  await dp?.stop();
  await echo?.close();
  blackholeFill?.destroy();
  blackhole?.kill();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const statusOf = (response: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);

async function stillServing(): Promise<void> {
  expect(dp.child.exitCode).toBeNull();
  const res = await request(`${dp.trafficUrl}/alive`);
  expect(res.statusCode).toBe(200);
  await res.body.dump();
}

describe('sizes', () => {
  it('431 for a request head over --max-header-bytes, and the connection closes', async () => {
    const r = await rawExchange(dp.trafficPort, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`);
    expect(statusOf(r.response)).toBe(431);
    expect(r.closedByServer).toBe(true);
  });

  it('414 for a target over --max-uri-bytes, also when the request line alone overflows the head limit', async () => {
    const a = await rawExchange(dp.trafficPort, `GET /${'a'.repeat(2000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(statusOf(a.response)).toBe(414);
    const b = await rawExchange(dp.trafficPort, `GET /${'a'.repeat(6000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(statusOf(b.response)).toBe(414);
    expect(b.closedByServer).toBe(true);
    expect(statusOf((await rawExchange(dp.trafficPort, `GET /${'a'.repeat(900)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).response)).toBe(200);
  });

  it('413 for a declared Content-Length over the limit, before anything reaches the upstream', async () => {
    const before = echo.requests.length;
    const r = await rawExchange(dp.trafficPort, `POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n${'b'.repeat(2000)}`);
    expect(statusOf(r.response)).toBe(413);
    expect(r.response.toLowerCase()).toContain('connection: close');
    expect(r.closedByServer).toBe(true);
    expect(echo.requests.length).toBe(before);
  });

  it('413 instead of 100 Continue: the client never sends the body', async () => {
    const socket = connect(dp.trafficPort, '127.0.0.1');
    socket.write('POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\nExpect: 100-continue\r\n\r\n');
    const [data] = (await once(socket, 'data')) as [Buffer];
    expect(String(data)).toMatch(/^HTTP\/1\.1 413 /);
    socket.destroy();
    // Under the limit the 100 comes first, then the answer.
    const ok = await rawExchange(dp.trafficPort, 'POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nhello');
    expect(ok.response).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  });

  it('413 for a chunked body that crosses the limit while streaming; the upstream request is aborted', async () => {
    const before = echo.requests.length;
    const chunk = 'c'.repeat(400);
    const body = `190\r\n${chunk}\r\n`.repeat(4) + '0\r\n\r\n';
    const r = await rawExchange(dp.trafficPort, `POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
    expect(statusOf(r.response)).toBe(413);
    expect(r.closedByServer).toBe(true);
    // The upstream saw the start of a request that never completed.
    await new Promise((res) => setTimeout(res, 200));
    expect(echo.requests.length).toBe(before);
    const line = await dp.waitForLog((l) => l.msg === 'request' && l.status === 413 && l.route === 'echo' && String(l.error).includes('exceeds'));
    expect(line.error).toBe('request body exceeds 1000 bytes');
  });

  it('a client still uploading after its 413 is not reset: the dataplane reads and drops the rest (lingering close), then closes cleanly', async () => {
    // allowHalfOpen: the dataplane sends FIN right after the 413 (then reads
    // and drops), and this uploader must go on writing past it, as one that
    // has not looked at the answer yet does.
    // Without it Node ends this side on that FIN, and a write racing it failed
    // here with EPIPE from the client itself (CI, once).
    const socket = connect({ port: dp.trafficPort, host: '127.0.0.1', allowHalfOpen: true });
    await once(socket, 'connect');
    let response = '';
    socket.setEncoding('utf8').on('data', (d: string) => (response += d));
    let failure: string | undefined;
    socket.on('error', (err: NodeJS.ErrnoException) => (failure ??= err.code ?? String(err)));
    const ended = once(socket, 'end').then(() => 'end');
    const closed = once(socket, 'close').then(([hadError]) => (hadError === true ? 'closed with an error' : 'closed'));
    socket.write('POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = `${(16 * 1024).toString(16)}\r\n${'u'.repeat(16 * 1024)}\r\n`;
    const writeFor = async (ms: number, until: () => boolean = () => false): Promise<void> => {
      const stopAt = Date.now() + ms;
      while (failure === undefined && Date.now() < stopAt && !until()) {
        if (!socket.write(chunk)) await Promise.race([once(socket, 'drain'), new Promise((r) => setTimeout(r, 50))]);
        else await new Promise((r) => setImmediate(r));
      }
    };
    // Past the 1000-byte limit until the whole answer is in...
    await writeFor(5_000, () => response.includes('request body exceeds'));
    expect(statusOf(response)).toBe(413);
    expect(response).toContain('request body exceeds 1000 bytes');
    // ...and on for a while after it, as an uploader that has not looked yet does.
    // A server that closed at once answers these writes with a reset.
    await writeFor(300);
    expect(failure).toBeUndefined();
    // The body ends; the server has closed its side (FIN, no reset) and the
    // connection closes cleanly once this side ends too.
    socket.end('0\r\n\r\n');
    const timeout = new Promise((r) => setTimeout(() => r(`no close; error ${failure}`), 3_000));
    expect(await Promise.race([ended, timeout])).toBe('end');
    expect(await Promise.race([closed, timeout])).toBe('closed');
    expect(failure).toBeUndefined();
  });

  it('per-route limits: 0 lifts it, a smaller one tightens it', async () => {
    const big = await request(`${dp.trafficUrl}/big`, { method: 'POST', body: 'd'.repeat(50_000) });
    expect(big.statusCode).toBe(200);
    expect(((await big.body.json()) as { bodyBytes: number }).bodyBytes).toBe(50_000);
    const tinyOk = await request(`${dp.trafficUrl}/tiny`, { method: 'POST', body: '0123456789' });
    expect(tinyOk.statusCode).toBe(200);
    await tinyOk.body.dump();
    const tinyNo = await request(`${dp.trafficUrl}/tiny`, { method: 'POST', body: '0123456789A' });
    expect(tinyNo.statusCode).toBe(413);
    await tinyNo.body.dump();
  });

  it('curl gets 413 for an upload over the limit', async () => {
    const file = join(tmp, 'upload');
    await writeFile(file, Buffer.alloc(5000, 'e'));
    const res = await curl(`${dp.trafficUrl}/x`, ['--data-binary', `@${file}`]);
    expect(res.status).toBe(413);
  });
});

describe('timeouts', () => {
  it('408 for a request head that does not complete in time (slowloris), and the connection closes', async () => {
    const started = Date.now();
    const r = await rawExchange(dp.trafficPort, 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ', 5_000);
    expect(statusOf(r.response)).toBe(408);
    expect(r.closedByServer).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('408 for a body that stops arriving, and the connection closes', async () => {
    const started = Date.now();
    const r = await rawExchange(dp.trafficPort, `POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n${'f'.repeat(100)}`, 5_000);
    expect(statusOf(r.response)).toBe(408);
    expect(r.closedByServer).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('closes an idle keep-alive connection after --keepalive-timeout-ms', async () => {
    const started = Date.now();
    const r = await rawExchange(dp.trafficPort, 'GET /ka HTTP/1.1\r\nHost: x\r\n\r\n', 5_000);
    expect(statusOf(r.response)).toBe(200);
    expect(r.response).toMatch(/Keep-Alive: timeout=1\r\n/i);
    expect(r.closedByServer).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it('504 when the whole request takes longer than the route\'s requestMs', async () => {
    const res = await request(`${dp.trafficUrl}/whole?delay=1000`);
    expect(res.statusCode).toBe(504);
    expect(await res.body.text()).toContain('request timeout');
  });

  it('504 when the upstream answers later than upstreamResponseMs', async () => {
    const res = await request(`${dp.trafficUrl}/slowresp?delay=1000`);
    expect(res.statusCode).toBe(504);
    expect(await res.body.text()).toContain('upstream response timeout');
  });

  it('504 when the upstream connect takes longer than upstreamConnectMs', async () => {
    const started = Date.now();
    const res = await request(`${dp.trafficUrl}/blackhole`);
    expect(res.statusCode).toBe(504);
    expect(await res.body.text()).toContain('upstream connect timeout');
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe('malformed requests', () => {
  it.each<[string, string, number]>([
    ['a request line that is not one', 'GARBAGE\r\n\r\n', 400],
    ['a bad method', 'G(T / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['a control character in the target', 'GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['a malformed HTTP version', 'GET / HTTP/1.x\r\nHost: x\r\n\r\n', 400],
    // As nginx: a major version this connection cannot speak is 505, not a syntax error.
    ['an unknown HTTP version', 'GET / HTTP/9.9\r\nHost: x\r\n\r\n', 505],
    ['a space in a header name', 'GET / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n', 400],
    ['a header line without a colon', 'GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n', 400],
    ['a NUL byte in a header value', 'GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n', 400],
    ['an obsolete line folding', 'GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n', 400],
    ['no Host in HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['invalid chunked encoding', 'POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', 400],
    ['Content-Length with Transfer-Encoding', 'POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['two different Content-Lengths', 'POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', 400],
    ['a negative Content-Length', 'POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', 400],
    ['chunked that is not the final coding', 'POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 400],
    ['an unknown transfer coding', 'POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n', 400],
  ])('%s → %d, connection closed', async (_what, raw, status) => {
    const r = await rawExchange(dp.trafficPort, raw, 3_000);
    expect(statusOf(r.response)).toBe(status);
    expect(r.response.toLowerCase()).toContain('connection: close');
    expect(r.closedByServer).toBe(true);
  });

  it('two Host headers → 400', async () => {
    const r = await rawExchange(dp.trafficPort, 'GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n');
    expect(statusOf(r.response)).toBe(400);
  });

  it('an invalid chunk in the middle of a proxied upload ends that request only', async () => {
    const r = await rawExchange(dp.trafficPort, 'POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nnot-hex\r\n', 3_000);
    expect(r.closedByServer).toBe(true);
    expect([0, 400]).toContain(statusOf(r.response));
  });

  it('the process survived all of the above and still serves', async () => {
    await stillServing();
    expect(dp.stderr()).toBe('');
  });
});

describe('max connections', () => {
  it('closes connections beyond --max-connections at once and counts them; a freed slot is usable again', async () => {
    const own = await spawnDataplane({ args: ['--max-connections', '3'] });
    const held: Socket[] = [];
    try {
      await applySnapshot(own.adminUrl, snapshot(1, [vhost('all', ['*'], [forward('echo', prefix('/'), 'echo')])], { echo: [echo.endpoint()] }));
      for (let i = 0; i < 3; i++) {
        const s = connect(own.trafficPort, '127.0.0.1');
        s.write('GET /held HTTP/1.1\r\nHost: x\r\n\r\n');
        await once(s, 'data');
        held.push(s);
      }
      const started = Date.now();
      const over = await rawExchange(own.trafficPort, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 3_000).catch((err: NodeJS.ErrnoException) => ({ response: '', closedByServer: true, err }));
      expect(over.response).toBe('');
      expect(over.closedByServer).toBe(true);
      expect(Date.now() - started).toBeLessThan(1_000);
      const metrics = await (await request(`${own.adminUrl}/metrics`)).body.text();
      expect(metrics).toMatch(/^pyserve_connections_dropped_total [1-9]/m);
      held.pop()!.destroy();
      await new Promise((r) => setTimeout(r, 100));
      const again = await rawExchange(own.trafficPort, 'GET /again HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      expect(statusOf(again.response)).toBe(200);
    } finally {
      for (const s of held) s.destroy();
      await own.stop();
    }
  });
});
