/**
 * `npm run bench`: every benchmark under bench/, one process each (so one's processes and memory never skew the
 * next), in a fixed order. Each prints its figures and rewrites its own section of docs/benchmarks.md.
 * Pass names to run some: `node dist/bench/all.js scaling sidecar-latency`.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const helpers = new Set(['all', 'report', 'system']);
const all = readdirSync(here)
  .filter((f) => f.endsWith('.js') && !helpers.has(f.replace(/\.js$/, '')))
  .map((f) => f.replace(/\.js$/, ''))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length > 0) {
  process.stderr.write(`bench: no such benchmark: ${unknown.join(', ')} (there are: ${all.join(', ')})\n`);
  process.exit(2);
}
let failed = 0;
for (const name of wanted.length > 0 ? wanted : all) {
  process.stdout.write(`\n== ${name}\n`);
  const r = spawnSync(process.execPath, [path.join(here, `${name}.js`)], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed += 1;
    process.stderr.write(`bench: ${name} exited with ${r.status ?? r.signal}\n`);
  }
}
process.exit(failed > 0 ? 1 : 0);
