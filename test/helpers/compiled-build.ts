/**
 * Compile the program as `npm run build` does (tsconfig.build.json), into a
 * folder of the caller's choice. The folder must sit inside the project, so
 * the compiled files find node_modules and package.json ("type": "module")
 * by walking up, as dist/ does. Used by the compiled-build test and the bench.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root folder. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Run tsc with tsconfig.build.json into `outDir`; throws with tsc's output when it fails. */
export function compileProject(outDir: string): void {
  execFileSync(process.execPath, [path.join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(PROJECT_ROOT, 'tsconfig.build.json'), '--outDir', outDir], { cwd: PROJECT_ROOT, stdio: 'pipe' });
}
