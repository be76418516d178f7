/** Which chart a `--chart` file name asks for; kept apart from the renderer so a bad name fails before Vega loads. */
import path from 'node:path';
import { FlagError } from '../load.js';

export type ChartFormat = 'svg' | 'html';

export function chartFormat(file: string): ChartFormat {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.svg') return 'svg';
  if (ext === '.html' || ext === '.htm') return 'html';
  const what = ext === '' ? 'a name without an extension' : `'${ext}'`;
  throw new FlagError('--chart', file, `cannot tell the format from ${what}: end it in .svg (an image) or .html (a page with hover and zoom)`);
}
