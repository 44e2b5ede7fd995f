import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../dataplane/limits/defaults.ts';
import { clientErrorStatus, http1ServerOptions } from '../../dataplane/limits/server.ts';

const err = (code: string, rawPacket?: Buffer): NodeJS.ErrnoException & { rawPacket?: Buffer } => Object.assign(new Error(code), { code, rawPacket });

describe('clientErrorStatus', () => {
  it.each<[string, number | undefined]>([
    ['ECONNRESET', undefined],
    ['HPE_INVALID_EOF_STATE', undefined],
    ['ERR_HTTP_REQUEST_TIMEOUT', 408],
    ['HPE_CHUNK_EXTENSIONS_OVERFLOW', 413],
    ['HPE_INVALID_METHOD', 400],
    ['HPE_UNEXPECTED_CONTENT_LENGTH', 400],
    ['HPE_INVALID_CHUNK_SIZE', 400],
  ])('%s → %s', (code, status) => {
    expect(clientErrorStatus(err(code), DEFAULT_LIMITS)).toBe(status);
  });

  it('tells an overlong request line (414) from overlong headers (431)', () => {
    const longLine = Buffer.from(`GET /${'a'.repeat(10_000)} HTTP/1.1\r\nHost: x\r\n`);
    const longHeader = Buffer.from(`GET / HTTP/1.1\r\nX: ${'a'.repeat(10_000)}`);
    const midHeader = Buffer.from('a'.repeat(10_000));
    expect(clientErrorStatus(err('HPE_HEADER_OVERFLOW', longLine), DEFAULT_LIMITS)).toBe(414);
    expect(clientErrorStatus(err('HPE_HEADER_OVERFLOW', longHeader), DEFAULT_LIMITS)).toBe(431);
    expect(clientErrorStatus(err('HPE_HEADER_OVERFLOW', midHeader), DEFAULT_LIMITS)).toBe(431);
    expect(clientErrorStatus(err('HPE_HEADER_OVERFLOW'), DEFAULT_LIMITS)).toBe(431);
  });
});

describe('http1ServerOptions', () => {
  it('maps the defaults and checks timeouts often enough', () => {
    expect(http1ServerOptions(DEFAULT_LIMITS)).toEqual({
      maxHeaderSize: 32 * 1024,
      headersTimeout: 60_000,
      requestTimeout: 0,
      keepAliveTimeout: 75_000,
      connectionsCheckingInterval: 5_000,
    });
    expect(http1ServerOptions({ ...DEFAULT_LIMITS, clientHeaderTimeoutMs: 1_000 }).connectionsCheckingInterval).toBe(100);
  });

  it('never gives Node a head timeout above the whole-request timeout (it would refuse to start)', () => {
    const o = http1ServerOptions({ ...DEFAULT_LIMITS, clientRequestTimeoutMs: 30_000 });
    expect(o.headersTimeout).toBe(30_000);
    expect(o.requestTimeout).toBe(30_000);
  });
});
