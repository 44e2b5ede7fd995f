// Writes crds/*.yaml (and the chart's copy) from the zod schemas in controller/api.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generatedCrds } from '../controller/api/crd.ts';

for (const dir of ['../crds/', '../charts/pyserve/crds/']) {
  const out = fileURLToPath(new URL(dir, import.meta.url));
  mkdirSync(out, { recursive: true });
  for (const [name, text] of generatedCrds()) writeFileSync(out + name, text);
}
console.log('crds/ and charts/pyserve/crds/ regenerated');
