/**
 * `qscale produce`: validates the flags, finds the producer, sends in chunks and shows progress — a bar on a
 * terminal, a line per ~10% otherwise (CI logs, pipes).
 */
import cliProgress from 'cli-progress';
import { CliError } from '../codes.js';
import type { ProduceFlags } from './index.js';
import { resolveProducerUrl } from './target.js';
import { produceInChunks, chunkSize, PRODUCER_MAX_COUNT, type ProduceResult } from './client.js';

const MAX_INTERVAL_MS = 3_600_000;

function wholeNumber(flag: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new CliError('ERR_FLAG', `${flag} must be a whole number from ${min} to ${max}, got '${raw}'`);
  }
  return n;
}

export interface ProgressSink {
  update(sent: number, total: number): void;
  stop(): void;
}

/** Progress for a non-terminal: one line when each further tenth is reached. */
export function lineProgress(write: (line: string) => void): ProgressSink {
  let lastTenth = 0;
  return {
    update(sent, total) {
      const tenth = total === 0 ? 10 : Math.floor((sent * 10) / total);
      if (sent === 0 || tenth === lastTenth) return;
      lastTenth = tenth;
      write(`sent ${sent}/${total} (${Math.floor((sent * 100) / total)}%)`);
    },
    stop() {},
  };
}

function barProgress(): ProgressSink {
  const bar = new cliProgress.SingleBar(
    { format: 'sending [{bar}] {percentage}% | {value}/{total} messages | {rate} msg/s | ETA {eta_formatted}', hideCursor: true, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  let begun = false;
  return {
    update(sent, total) {
      const rate = Math.round(sent / Math.max(0.001, (Date.now() - started) / 1000));
      if (!begun) {
        bar.start(total, sent, { rate });
        begun = true;
      } else bar.update(sent, { rate });
    },
    stop() {
      if (begun) bar.stop();
    },
  };
}

export function summary(r: ProduceResult, url: string): string {
  const secs = r.elapsedMs / 1000;
  const rate = secs > 0 ? ` (${Math.round(r.sent / secs)} msg/s)` : '';
  return `sent ${r.sent} message${r.sent === 1 ? '' : 's'} through ${url} in ${secs.toFixed(1)} s${rate}`;
}

export async function runProduce(flags: ProduceFlags): Promise<void> {
  const count = wholeNumber('--count', flags.count, 1, Number.MAX_SAFE_INTEGER);
  const intervalMs = wholeNumber('--interval', flags.interval, 0, MAX_INTERVAL_MS);
  const chunk = flags.chunk === undefined ? undefined : wholeNumber('--chunk', flags.chunk, 1, PRODUCER_MAX_COUNT);
  const target = await resolveProducerUrl({ url: flags.url, dataDir: flags.dataDir });
  const requests = Math.ceil(count / (chunk ?? chunkSize(count, intervalMs)));
  // One request has nothing to show until it is done; progress is for runs that take several.
  const sink: ProgressSink | undefined = !flags.progress || requests <= 1
    ? undefined
    : process.stderr.isTTY
      ? barProgress()
      : lineProgress((l) => void process.stderr.write(l + '\n'));
  let result: ProduceResult;
  try {
    result = await produceInChunks({
      url: target.url,
      source: target.source,
      count,
      intervalMs,
      chunk,
      onProgress: sink ? (s, t) => sink.update(s, t) : undefined,
    });
  } finally {
    sink?.stop();
  }
  process.stdout.write(summary(result, target.url) + '\n');
}
