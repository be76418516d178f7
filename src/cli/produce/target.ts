/** Which producer `qscale produce` talks to, and why: a flag, the environment, the running system, or the default. */
import path from 'node:path';
import { CliError } from '../codes.js';
import { readSupervisorFile } from '../../supervisor/state.js';

export const DEFAULT_PRODUCER_URL = 'http://127.0.0.1:5000';

export interface ProducerTarget {
  url: string;
  /** Where the URL came from, for error messages. */
  source: string;
}

export async function resolveProducerUrl(opts: { url?: string; dataDir: string; env?: NodeJS.ProcessEnv }): Promise<ProducerTarget> {
  const env = opts.env ?? process.env;
  let target: ProducerTarget | undefined;
  if (opts.url !== undefined && opts.url !== '') target = { url: opts.url, source: '--url' };
  else if (env.QSCALE_PRODUCER_URL) target = { url: env.QSCALE_PRODUCER_URL, source: 'QSCALE_PRODUCER_URL' };
  else {
    const file = await readSupervisorFile(opts.dataDir);
    if (file?.producerUrl) target = { url: file.producerUrl, source: path.join(opts.dataDir, 'supervisor.json') };
  }
  target ??= { url: DEFAULT_PRODUCER_URL, source: 'the default' };
  // A URL given on the command line is a flag error; one read from the environment or supervisor.json is configuration.
  const code = target.source === '--url' ? 'ERR_FLAG' : 'ERR_CONFIG';
  let parsed: URL;
  try {
    parsed = new URL(target.url);
  } catch {
    throw new CliError(code, `producer URL '${target.url}' (from ${target.source}) is not a URL: expected e.g. http://127.0.0.1:5000`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new CliError(code, `producer URL '${target.url}' (from ${target.source}) must start with http:// or https://`);
  }
  return { url: target.url.replace(/\/+$/, ''), source: target.source };
}
