import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OptionsError, parseOptions } from '../../dataplane/options.ts';

describe('parseOptions', () => {
  it('has the documented defaults', () => {
    expect(parseOptions(['--admin-token', 's3cret'], {})).toEqual({
      trafficHost: '0.0.0.0',
      trafficPort: 8080,
      adminHost: '0.0.0.0',
      adminPort: 9901,
      adminToken: 's3cret',
      insecureAdmin: false,
      drainTimeoutMs: 15_000,
      maxSnapshotBytes: 64 * 1024 * 1024,
      logLevel: 'info',
    });
  });

  it('reads the environment, and flags win over it', () => {
    const env = { PYSERVE_TRAFFIC_PORT: '81', PYSERVE_ADMIN_PORT: '82', PYSERVE_ADMIN_TOKEN: 'env', PYSERVE_LOG_LEVEL: 'warn', PYSERVE_DRAIN_TIMEOUT_MS: '5' };
    expect(parseOptions([], env)).toMatchObject({ trafficPort: 81, adminPort: 82, adminToken: 'env', logLevel: 'warn', drainTimeoutMs: 5 });
    expect(parseOptions(['--traffic-port', '0', '--admin-token', 'flag'], env)).toMatchObject({ trafficPort: 0, adminPort: 82, adminToken: 'flag' });
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
