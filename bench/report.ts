/**
 * Benchmarks print their figures and record them in docs/benchmarks.md, one `## Section` each, replaced in place
 * on every run so the file always shows the latest measurement with how it was run.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(fileURLToPath(new URL('../../', import.meta.url)));
const FILE = path.join(ROOT, 'docs/benchmarks.md');

const HEADER = `# Benchmarks

Figures measured by the scripts under \`bench/\` (\`npm run bench\` runs them all; each script also runs alone with
\`node dist/bench/<name>.js\` after \`npm run build\`). Each section says how it was run and is replaced when its
script runs again. Machine: see each section's line "machine".
`;

export function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  return `machine: ${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
}

/** Replaces (or appends) the section `## title` with `body`. */
export async function writeSection(title: string, body: string): Promise<void> {
  let text: string;
  try {
    text = await fs.readFile(FILE, 'utf8');
  } catch {
    text = HEADER;
  }
  const heading = `## ${title}`;
  const section = `${heading}\n\n${body.trim()}\n\n`;
  const start = text.indexOf(`${heading}\n`);
  if (start === -1) {
    text = text.trimEnd() + '\n\n' + section;
  } else {
    const next = text.indexOf('\n## ', start + heading.length);
    text = text.slice(0, start) + section + (next === -1 ? '' : text.slice(next + 1));
  }
  await fs.mkdir(path.dirname(FILE), { recursive: true });
  await fs.writeFile(FILE, text.trimEnd() + '\n');
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}
