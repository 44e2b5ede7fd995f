import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OptionsError, parseOptions } from '../../dataplane/options.ts';
import { DEFAULT_COMPRESSIBLE_TYPES } from '../../dataplane/middleware/compression.ts';
import { autoWorkers, cgroupCpuLimit } from '../../dataplane/cluster/cpus.ts';

describe('parseOptions', () => {
  it('has the documented defaults', () => {
    expect(parseOptions(['--admin-token', 's3cret'], {})).toEqual({
      trafficHost: '0.0.0.0',
      trafficPort: 8080,
      workers: autoWorkers(),
      httpsPort: 8443,
      httpsRedirectPort: 443,
      http2MaxConcurrentStreams: 128,
      adminHost: '0.0.0.0',
      adminPort: 9901,
      adminToken: 's3cret',
      insecureAdmin: false,
      drainTimeoutMs: 15_000,
      maxSnapshotBytes: 64 * 1024 * 1024,
      logLevel: 'info',
      accessLog: true,
      gcMetrics: false,
      limits: {
        maxHeaderBytes: 32 * 1024,
        maxUriBytes: 8 * 1024,
        maxBodyBytes: 1024 * 1024,
        clientHeaderTimeoutMs: 60_000,
        clientBodyTimeoutMs: 60_000,
        clientRequestTimeoutMs: 0,
        keepAliveTimeoutMs: 75_000,
        maxConnections: 16_384,
      },
      timeouts: { connectMs: 5_000, responseMs: 60_000, requestMs: 0, websocketIdleMs: 3_600_000 },
      compression: { enabled: false, minLength: 256, contentTypes: DEFAULT_COMPRESSIBLE_TYPES, algorithms: ['zstd', 'br', 'gzip', 'deflate'] },
    });
  });

  it('reads limits, timeouts and compression flags', () => {
    const o = parseOptions([
      '--admin-token', 'x', '--max-body-bytes', '0', '--compression', '--compression-types', 'text/html, text/event-stream',
      '--compression-algorithms', 'gzip,br', '--websocket-idle-timeout-ms', '1000', '--max-connections', '10',
    ], { PYSERVE_KEEPALIVE_TIMEOUT_MS: '5000' });
    expect(o?.limits).toMatchObject({ maxBodyBytes: 0, keepAliveTimeoutMs: 5_000, maxConnections: 10 });
    expect(o?.timeouts.websocketIdleMs).toBe(1_000);
    expect(o?.compression).toEqual({ enabled: true, minLength: 256, contentTypes: ['text/html', 'text/event-stream'], algorithms: ['gzip', 'br'] });
    expect(parseOptions(['--admin-token', 'x'], { PYSERVE_COMPRESSION: 'true' })?.compression.enabled).toBe(true);
    expect(() => parseOptions(['--admin-token', 'x', '--compression-algorithms', 'lzma'], {})).toThrow(OptionsError);
    expect(() => parseOptions(['--admin-token', 'x', '--compression-types', 'html'], {})).toThrow(OptionsError);
  });

  it('reads the environment, and flags win over it', () => {
    const env = { PYSERVE_TRAFFIC_PORT: '81', PYSERVE_ADMIN_PORT: '82', PYSERVE_ADMIN_TOKEN: 'env', PYSERVE_LOG_LEVEL: 'warn', PYSERVE_DRAIN_TIMEOUT_MS: '5' };
    expect(parseOptions([], env)).toMatchObject({ trafficPort: 81, adminPort: 82, adminToken: 'env', logLevel: 'warn', drainTimeoutMs: 5 });
    expect(parseOptions(['--traffic-port', '0', '--admin-token', 'flag'], env)).toMatchObject({ trafficPort: 0, adminPort: 82, adminToken: 'flag' });
  });

  it('takes --workers as a count or auto, from the flag or PYSERVE_WORKERS', () => {
    const t = ['--admin-token', 'x'];
    expect(parseOptions([...t, '--workers', '3'], {})!.workers).toBe(3);
    expect(parseOptions(t, { PYSERVE_WORKERS: '4' })!.workers).toBe(4);
    expect(parseOptions([...t, '--workers', '1'], { PYSERVE_WORKERS: '4' })!.workers).toBe(1);
    expect(parseOptions([...t, '--workers', 'auto'], {})!.workers).toBe(autoWorkers());
    expect(autoWorkers()).toBeGreaterThanOrEqual(1);
    for (const bad of ['0', '-1', '1.5', 'many']) expect(() => parseOptions([...t, '--workers', bad], {})).toThrow(OptionsError);
  });

  it('turns the access log on or off, from --access-log or PYSERVE_ACCESS_LOG', () => {
    const t = ['--admin-token', 'x'];
    expect(parseOptions([...t, '--access-log', 'off'], {})!.accessLog).toBe(false);
    expect(parseOptions([...t, '--access-log=on'], {})!.accessLog).toBe(true);
    expect(parseOptions(t, { PYSERVE_ACCESS_LOG: 'off' })!.accessLog).toBe(false);
    expect(parseOptions(t, { PYSERVE_ACCESS_LOG: 'false' })!.accessLog).toBe(false);
    expect(parseOptions([...t, '--access-log', 'on'], { PYSERVE_ACCESS_LOG: 'off' })!.accessLog).toBe(true);
    expect(parseOptions(t, { PYSERVE_ACCESS_LOG: '' })!.accessLog).toBe(true);
    for (const bad of ['no', 'OFF ', '0']) expect(() => parseOptions([...t, '--access-log', bad], {})).toThrow(/--access-log/);
    // It takes a value: a bare --access-log is a usage error, not "on".
    expect(() => parseOptions([...t, '--access-log'], {})).toThrow(OptionsError);
  });

  it('exports the GC histogram only when asked, from --gc-metrics or PYSERVE_GC_METRICS', () => {
    const t = ['--admin-token', 'x'];
    expect(parseOptions(t, {})!.gcMetrics).toBe(false);
    expect(parseOptions([...t, '--gc-metrics', 'on'], {})!.gcMetrics).toBe(true);
    expect(parseOptions(t, { PYSERVE_GC_METRICS: 'true' })!.gcMetrics).toBe(true);
    expect(parseOptions([...t, '--gc-metrics=off'], { PYSERVE_GC_METRICS: 'on' })!.gcMetrics).toBe(false);
    expect(() => parseOptions([...t, '--gc-metrics', 'yes'], {})).toThrow(/--gc-metrics/);
  });

  it('refuses integer values that Number() would coerce', () => {
    const t = ['--admin-token', 'x'];
    for (const bad of ['', ' 81', '1e3', '0x10', '81.0', '+81', '-0x1']) {
      expect(() => parseOptions([...t, '--traffic-port', bad], {}), JSON.stringify(bad)).toThrow(OptionsError);
    }
    expect(() => parseOptions([...t, '--traffic-port', 'abc'], {})).toThrow('--traffic-port: must be an integer from 0 to 65535, got "abc"');
    expect(() => parseOptions(t, { PYSERVE_DRAIN_TIMEOUT_MS: '5s' })).toThrow(/--drain-timeout-ms: must be an integer from 0 to 3600000/);
    expect(parseOptions([...t, '--traffic-port', '0081'], {})!.trafficPort).toBe(81);
  });

  it('caps auto workers by the cgroup CPU quota', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgroup-'));
    try {
      expect(cgroupCpuLimit(dir)).toBeUndefined();
      writeFileSync(join(dir, 'cpu.max'), 'max 100000\n');
      expect(cgroupCpuLimit(dir)).toBeUndefined();
      writeFileSync(join(dir, 'cpu.max'), '150000 100000\n');
      expect(cgroupCpuLimit(dir)).toBe(2);
      writeFileSync(join(dir, 'cpu.max'), '20000 100000\n');
      expect(cgroupCpuLimit(dir)).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('requires a token unless --insecure-admin', () => {
    expect(() => parseOptions([], {})).toThrow(OptionsError);
    expect(() => parseOptions([], { PYSERVE_ADMIN_TOKEN: '' })).toThrow(/token is required/);
    expect(parseOptions(['--insecure-admin'], {})).toMatchObject({ adminToken: undefined, insecureAdmin: true });
    expect(parseOptions([], { PYSERVE_INSECURE_ADMIN: 'true' })).toMatchObject({ insecureAdmin: true });
  });

  it('reads a token file, trimmed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pyserve-opt-'));
    try {
      writeFileSync(join(dir, 't'), '  tok\n');
      expect(parseOptions(['--admin-token-file', join(dir, 't')], {})?.adminToken).toBe('tok');
      expect(() => parseOptions(['--admin-token-file', join(dir, 'missing')], {})).toThrow(/admin-token-file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    [['--admin-token', 'x', '--traffic-port', '70000']],
    [['--admin-token', 'x', '--log-level', 'loud']],
    [['--admin-token', 'x', '--drain-timeout-ms', '-1']],
    [['--admin-token', 'x', 'positional']],
    [['--nope']],
  ])('rejects %j', (argv) => {
    expect(() => parseOptions(argv, {})).toThrow(OptionsError);
  });

  it('returns undefined for --help', () => {
    expect(parseOptions(['--help'], {})).toBeUndefined();
  });
});
