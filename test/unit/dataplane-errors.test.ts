import { describe, expect, it } from 'vitest';
import { classifyUpstreamError } from '../../dataplane/upstream/errors.ts';

const err = (code: string): Error => Object.assign(new Error(code), { code });

describe('classifyUpstreamError', () => {
  it.each<[unknown, number, string]>([
    [err('ECONNREFUSED'), 502, 'connect'],
    [err('ENOTFOUND'), 502, 'connect'],
    [err('EHOSTUNREACH'), 502, 'connect'],
    [err('PYSERVE_UPSTREAM_CONNECT_TIMEOUT'), 504, 'timeout'],
    [err('PYSERVE_UPSTREAM_HEADERS_TIMEOUT'), 504, 'timeout'],
    [err('PYSERVE_UPSTREAM_BODY_TIMEOUT'), 504, 'timeout'],
    [err('ECONNRESET'), 502, 'bad_response'],
    [err('HPE_INVALID_CONSTANT'), 502, 'bad_response'],
    [err('PYSERVE_UPSTREAM_CLOSED'), 502, 'bad_response'],
    [new AggregateError([err('ECONNREFUSED'), err('ENETUNREACH')]), 502, 'connect'],
    [new Error('no code'), 502, 'bad_response'],
    [null, 502, 'bad_response'],
  ])('%s → %i %s', (e, status, kind) => {
    expect(classifyUpstreamError(e)).toMatchObject({ status, kind });
  });
});
