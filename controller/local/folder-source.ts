/**
 * The manifests folder as a source of cluster state.
 *
 * Each file is parsed on its own and its last good content is kept: a broken
 * edit to one file is reported and leaves everything else, including that
 * file's previous objects, in place. A deleted file takes its objects with it.
 */
import { readdir, readFile } from 'node:fs/promises';
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { join, relative } from 'node:path';
import { parseManifestFile } from './parse-manifests.ts';
import type { LocatedObject, ManifestProblem } from './parse-manifests.ts';

/** Outcome of one scan of the folder. */
export interface FolderScan {
  /** Objects from every file's last good version. */
  objects: LocatedObject[];
  /** Problems in files as they are now (their previous good objects are in `objects`). */
  problems: ManifestProblem[];
  warnings: ManifestProblem[];
  /** Files (relative) whose problems made PyServe keep their previous content. */
  keptPrevious: string[];
}

const MANIFEST_EXT = /\.(ya?ml|json)$/i;

export class FolderSource {
  readonly dir: string;
  readonly #lastGood = new Map<string, LocatedObject[]>();
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Read every manifest under the folder (recursively, hidden entries skipped). */
  async scan(): Promise<FolderScan> {
    const files = await listManifests(this.dir);
    const problems: ManifestProblem[] = [];
    const warnings: ManifestProblem[] = [];
    const keptPrevious: string[] = [];
    const present = new Set<string>();
    for (const abs of files) {
      const rel = relative(this.dir, abs);
      present.add(rel);
      let text: string;
      try {
        text = await readFile(abs, 'utf8');
      } catch (err) {
        // Raced with a delete or a rename; the next event rescans.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      const parsed = parseManifestFile(rel, text);
      warnings.push(...parsed.warnings);
      if (parsed.problems.length) {
        problems.push(...parsed.problems);
        if (this.#lastGood.has(rel)) keptPrevious.push(rel);
        continue;
      }
      this.#lastGood.set(rel, parsed.objects);
    }
    for (const rel of [...this.#lastGood.keys()]) if (!present.has(rel)) this.#lastGood.delete(rel);
    const objects = [...this.#lastGood.keys()].sort().flatMap((k) => this.#lastGood.get(k) ?? []);
    return { objects, problems, warnings, keptPrevious };
  }

  /**
   * Call `onChange` after files change, debounced: editors write in bursts
   * (temp file, rename, chmod), and one rescan per burst is enough.
   */
  watch(onChange: () => void, debounceMs = 150): void {
    this.#watcher = watch(this.dir, { recursive: true }, (_event, name) => {
      if (name && !MANIFEST_EXT.test(String(name))) return;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(onChange, debounceMs);
    });
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#watcher?.close();
  }
}

async function listManifests(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const abs = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listManifests(abs)));
    else if (entry.isFile() && MANIFEST_EXT.test(entry.name)) out.push(abs);
  }
  return out.sort();
}
