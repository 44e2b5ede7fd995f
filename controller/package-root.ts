// Files that ship beside the code (examples/) are found from the package's
// root, so the same code runs from its sources (controller/…) and from the
// compiled build (dist/controller/…, see tsconfig.build.json).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The nearest folder above this file that holds a package.json. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}

/** `.js` when running compiled, `.ts` from the sources: for paths to sibling entry points. */
export const OWN_EXTENSION = path.extname(fileURLToPath(import.meta.url));
