import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * Build a bearer-token check. Both sides are hashed first so the comparison
 * takes the same time whatever the presented token's length or content.
 * With `token` undefined (`--insecure-admin`) every request passes.
 */
export function bearerTokenCheck(token: string | undefined): (authorization: string | undefined) => boolean {
  if (token === undefined) return () => true;
  const expected = digest(token);
  return (authorization) => {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    // Still hash something on a malformed header, to keep the timing flat.
    const presented = digest(m?.[1] ?? '');
    return timingSafeEqual(presented, expected) && m !== null;
  };
}
