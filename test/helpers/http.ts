/**
 * Clients for dataplane tests: undici (the proxy's own library, used here
 * as an ordinary client), curl (a different HTTP implementation) and a raw
 * socket for requests no well-behaved client would send.
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { request } from 'undici';
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';

/** A buffered response. */
export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** Options of {@link httpGet}. */
export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  dispatcher?: Dispatcher;
}

/** Send a request with undici and buffer the response. */
export async function http(url: string, opts: HttpOptions = {}): Promise<HttpResult> {
  const res = await request(url, {
    method: (opts.method ?? 'GET') as 'GET',
    headers: opts.headers,
    body: opts.body,
    dispatcher: opts.dispatcher,
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** Body of an echo-backend response, parsed. */
export function echoed(res: HttpResult): { backend: string; url: string; headers: IncomingHttpHeaders; remotePort: number; bodyBytes: number; bodySha256: string } {
  return JSON.parse(res.text) as ReturnType<typeof echoed>;
}

/** Result of {@link curl}. */
export interface CurlResult {
  /** curl's exit code (0 on any HTTP status; 7 = could not connect). */
  exitCode: number | null;
  status: number;
  /** Response headers, names lower-cased; repeated names keep the last value. */
  headers: Record<string, string>;
  body: string;
  stderr: string;
}

/** Run curl against `url` with extra arguments; the final response's status, headers and body are parsed. */
export function curl(url: string, args: string[] = []): Promise<CurlResult> {
  const child = spawn('curl', ['-sS', '-i', '--max-time', '20', ...args, url], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) => {
      let rest = Buffer.concat(out).toString('latin1');
      let head: string;
      // Skip interim responses (100 Continue) to reach the final one.
      for (;;) {
        const end = rest.indexOf('\r\n\r\n');
        if (end === -1) {
          head = rest;
          rest = '';
          break;
        }
        head = rest.slice(0, end);
        rest = rest.slice(end + 4);
        if (!/^HTTP\/[\d.]+ 1\d\d/.test(head)) break;
      }
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ exitCode, status: Number(statusLine.split(' ')[1] ?? 0), headers, body: Buffer.from(rest, 'latin1').toString('utf8'), stderr });
    });
  });
}

/** Write raw bytes to a port and collect everything until the server closes (or `timeoutMs`). */
export function rawExchange(port: number, data: string, timeoutMs = 5_000): Promise<{ response: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let response = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ response, closedByServer: false });
    }, timeoutMs);
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (response += c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ response, closedByServer: true });
    });
    socket.write(data);
  });
}
