// A real browser through the real dataplane: headless Chromium (Debian's,
// driven by playwright-core) loads a page served through the dataplane, and
// the page's script opens a WebSocket through it and exchanges messages.
// Chromium is installed when missing; the test fails rather than skips.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startBackend } from '../helpers/backends.ts';
import type { Backend } from '../helpers/backends.ts';
import { spawnDataplane } from '../helpers/dataplane.ts';
import type { DataplaneChild } from '../helpers/dataplane.ts';
import { applySnapshot, forward, prefix, snapshot, vhost } from '../helpers/snapshots.ts';
import { startWsBackend } from '../helpers/websockets.ts';
import type { WsBackend } from '../helpers/websockets.ts';

const CHROMIUM = '/usr/bin/chromium';
const ENSURE_DEBS = fileURLToPath(new URL('../../scripts/test-tools/ensure-debs.sh', import.meta.url));

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>pyserve ws</title></head>
<body><pre id="out">running</pre>
<script>
window.result = (async () => {
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/browser', ['chat']);
  ws.binaryType = 'arraybuffer';
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('WebSocket failed')); });
  const replies = [];
  let wake;
  ws.onmessage = (e) => { replies.push(typeof e.data === 'string' ? e.data : 'binary:' + e.data.byteLength); wake && wake(); };
  ws.send('hello from chromium');
  ws.send(new Uint8Array(70000).fill(7));
  ws.send('push:3');
  while (replies.length < 5) await new Promise((r) => (wake = r));
  const closedEvent = new Promise((resolve) => (ws.onclose = resolve));
  ws.close(1000, 'done');
  const ev = await closedEvent;
  const result = { protocol: ws.protocol, extensions: ws.extensions, replies, code: ev.code, wasClean: ev.wasClean };
  document.getElementById('out').textContent = JSON.stringify(result);
  return result;
})();
</script></body></html>`;

let dp: DataplaneChild;
let pages: Backend;
let ws: WsBackend;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    // Installs Debian's chromium as root, or exits non-zero (and this test fails).
    execFileSync('bash', [ENSURE_DEBS, 'chromium'], { stdio: 'inherit', timeout: 600_000 });
  }
  expect(existsSync(CHROMIUM), `${CHROMIUM} is required (scripts/test-tools/ensure-debs.sh chromium)`).toBe(true);
  [dp, ws, pages] = await Promise.all([
    spawnDataplane(),
    startWsBackend(),
    startBackend('pages', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
      return true;
    }),
  ]);
  await applySnapshot(dp.adminUrl, snapshot(1, [vhost('app', ['*'], [
    forward('ws', prefix('/ws'), 'ws'),
    forward('pages', prefix('/'), 'pages'),
  ])], { ws: [ws.endpoint()], pages: [pages.endpoint()] }));
  // Root in CI: Chromium's sandbox needs namespaces a container may not grant.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await dp?.stop();
  await Promise.all([ws?.close(), pages?.close()]);
});

it('a page served through the dataplane talks over a WebSocket through it', async () => {
  const page = await browser.newPage();
  const origin = `http://127.0.0.1:${dp.trafficPort}`;
  await page.goto(`${origin}/index.html`);
  const result = await page.evaluate(() => (globalThis as unknown as { result: Promise<unknown> }).result);
  expect(result).toEqual({
    protocol: 'chat',
    extensions: expect.stringContaining('permessage-deflate'),
    replies: ['hello from chromium', 'binary:70000', '0', '1', '2'],
    code: 1000,
    wasClean: true,
  });
  expect(await page.textContent('#out')).toContain('hello from chromium');
  const handshake = ws.handshakes.at(-1)!;
  expect(handshake.url).toBe('/ws/browser');
  expect(handshake.headers.origin).toBe(origin);
  expect(handshake.headers['user-agent']).toMatch(/Chrome/);
  expect(await dp.waitForLog((l) => l.msg === 'request' && l.upgrade === true)).toMatchObject({ httpVersion: '1.1', status: 101 });
  await page.close();
}, 60_000);

it('over HTTPS the page and its WebSocket share one HTTP/2 connection (RFC 8441 extended CONNECT)', async () => {
  // The dataplane's self-signed default certificate: this test is about the tunnel, not the PKI.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const origin = `https://127.0.0.1:${dp.httpsPort}`;
  const response = await page.goto(`${origin}/index.html`);
  expect(response?.status()).toBe(200);
  const result = await page.evaluate(() => (globalThis as unknown as { result: Promise<unknown> }).result);
  expect(result).toMatchObject({ protocol: 'chat', replies: ['hello from chromium', 'binary:70000', '0', '1', '2'], code: 1000 });
  const handshake = ws.handshakes.at(-1)!;
  expect(handshake.headers['x-forwarded-proto']).toBe('https');
  // Chromium used the HTTP/2 connection of the page, so the access line says HTTP/2.
  const line = await dp.waitForLog((l) => l.msg === 'request' && l.upgrade === true && l.httpVersion === '2', 5_000);
  expect(line).toMatchObject({ route: 'ws', status: 101, path: '/ws/browser' });
  await context.close();
}, 60_000);
