// HTTP/2 conformance: h2spec (built from the Go module proxy by
// scripts/test-tools/build-h2spec.sh) against the real dataplane, over h2c on
// the shared plain port and over TLS. Every case must pass except the ones
// listed below, each explained in docs/http2.md.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { applySnapshot, forward, prefix, snapshot, vhost } from '../helpers/snapshots.ts';

const run = promisify(execFile);

/**
 * Known failures, `<section>: <case>` as h2spec names them. The first group is
 * Node's HTTP/2 stack (nghttp2) itself: a bare `http2.createServer` fails the
 * same cases. See docs/http2.md for the reason of each.
 */
const NODE_EXCEPTIONS = [
  'http2/5.1: closed: Sends a DATA frame after sending RST_STREAM frame',
  'http2/5.1: closed: Sends a HEADERS frame after sending RST_STREAM frame',
  'http2/5.1: closed: Sends a DATA frame',
  'http2/5.1: closed: Sends a HEADERS frame',
  'http2/5.1.1: Sends stream identifier that is numerically smaller than previous',
  'http2/5.3.1: Sends PRIORITY frame that depend on itself',
  'http2/6.3: Sends a PRIORITY frame with 0x0 stream identifier',
  'http2/6.7: Sends a PING frame with ACK',
  'http2/6.9.1: Sends multiple WINDOW_UPDATE frames increasing the flow control window to above 2^31-1 on a stream',
];
/** Only on the plain port, which HTTP/1.1 shares: a bad preface is answered as an HTTP/1.1 request (400) before the close. */
const SHARED_PORT_EXCEPTIONS = ['http2/3.5: Sends invalid connection preface'];

interface Outcome {
  total: number;
  passed: number;
  skipped: number;
  failed: string[];
}

/** Parse h2spec's JUnit report: one <testcase package="http2/5.1" classname="…"> each, with <error>/<failure>/<skipped> children. */
function parseReport(xml: string): Outcome {
  const cases = [...xml.matchAll(/<testcase package="([^"]*)" classname="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)];
  const decode = (s: string): string => s.replace(/&#39;/g, "'").replace(/&#34;|&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  const failed: string[] = [];
  let skipped = 0;
  for (const c of cases) {
    const body = c[4] ?? '';
    if (/<skipped/.test(body)) skipped++;
    else if (/<(error|failure)/.test(body)) failed.push(`${c[1]}: ${decode(c[2]!)}`);
  }
  return { total: cases.length, passed: cases.length - failed.length - skipped, skipped, failed };
}

let h2spec: string;
let dp: DataplaneChild;
let backend: Backend;
const reports = mkdtempSync(join(tmpdir(), 'pyserve-h2spec-'));

beforeAll(async () => {
  // Builds once per machine (about a minute cold, cached afterwards).
  const { stdout } = await run('bash', ['scripts/test-tools/build-h2spec.sh'], { timeout: 900_000 });
  h2spec = join(stdout.trim().split('\n').at(-1)!, 'h2spec');
  backend = await startBackend('b');
  dp = await spawnDataplane();
  await applySnapshot(dp.adminUrl, snapshot(1, [vhost('v', ['*'], [forward('r', prefix('/'), 'c')])], { c: [backend.endpoint()] }));
}, 900_000);

afterAll(async () => {
  await dp?.stop();
  await backend?.close();
});

async function runH2spec(label: string, args: string[]): Promise<Outcome> {
  const report = join(reports, `${label}.xml`);
  // h2spec exits 1 when any case fails; the report says which.
  await run(h2spec, ['-h', '127.0.0.1', '-o', '2', '-j', report, ...args], { timeout: 300_000 }).catch((err: { code?: unknown }) => {
    if (err.code !== 1) throw err;
  });
  return parseReport(readFileSync(report, 'utf8'));
}

describe('h2spec', () => {
  it('h2c with prior knowledge on the shared plain port', async () => {
    const o = await runH2spec('h2c', ['-p', String(dp.trafficPort)]);
    console.log(`h2spec h2c: ${o.total} cases, ${o.passed} passed, ${o.skipped} skipped, ${o.failed.length} failed (all listed exceptions)`);
    expect(o.total).toBe(145);
    expect(o.failed.filter((f) => !NODE_EXCEPTIONS.includes(f) && !SHARED_PORT_EXCEPTIONS.includes(f))).toEqual([]);
    expect(o.passed).toBeGreaterThanOrEqual(o.total - NODE_EXCEPTIONS.length - SHARED_PORT_EXCEPTIONS.length);
  }, 300_000);

  it('h2 over TLS (ALPN)', async () => {
    const o = await runH2spec('tls', ['-p', String(dp.httpsPort), '-t', '-k']);
    console.log(`h2spec TLS: ${o.total} cases, ${o.passed} passed, ${o.skipped} skipped, ${o.failed.length} failed (all listed exceptions)`);
    expect(o.total).toBe(145);
    expect(o.failed.filter((f) => !NODE_EXCEPTIONS.includes(f))).toEqual([]);
    expect(o.passed).toBeGreaterThanOrEqual(o.total - NODE_EXCEPTIONS.length);
  }, 300_000);

  it('the dataplane is still healthy afterwards', async () => {
    const res = await fetch(`http://127.0.0.1:${dp.trafficPort}/after`);
    expect(res.status).toBe(200);
    expect(dp.stderr()).toBe('');
  });
});
