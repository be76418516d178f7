/**
 * createLineLogger (the consumer app's logger, which does not load pino) writes the very lines createLogger writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const LOG = pathToFileURL(path.resolve(fileURLToPath(new URL('../../src/util/log.js', import.meta.url)))).href;

/** The stderr lines a process writes through the named factory, with each line's time taken out. */
function lines(factory: 'createLogger' | 'createLineLogger', env: Record<string, string> = {}): { lines: string[]; loadedPino: boolean } {
  const script = `
    import { ${factory} as make } from ${JSON.stringify(LOG)};
    import { createRequire } from 'node:module';
    const log = make('consumer', { app_id: 'consumer' });
    log.info('consumer listening on http://127.0.0.1:6000: POST http://127.0.0.1:6000/message-queue, 5 ms of work per message');
    log.warn({ route: '/message-queue', bytes: 3, body: 'a "quoted" = b' }, 'rejected a message on /message-queue: body is not JSON');
    log.debug('only with QSCALE_LOG_LEVEL=debug');
    log.error({ err: new Error('broken pipe'), at: new Date(0), gone: undefined, n: 2, nested: { a: [1] } }, 'answered 500');
    log.info({ method: 'POST' }, '');
    const loaded = Object.keys(createRequire(import.meta.url).cache).some((f) => /node_modules\\/pino\\//.test(f));
    process.stdout.write(String(loaded));`;
  const { QSCALE_LOG_LEVEL: _l, QSCALE_LOG_FORMAT: _f, ...inherited } = process.env;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...inherited, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { lines: r.stderr.trimEnd().split('\n').map((l) => l.replace(/time="?[^ "]+"? /, 'time=T ').replace(/"time":\d+/, '"time":T')), loadedPino: r.stdout === 'true' };
}

test('log - the line logger writes the same logfmt lines as the pino logger, without loading pino', { timeout: 60_000 }, () => {
  const pinoLines = lines('createLogger', { QSCALE_LOG_LEVEL: 'info' });
  const light = lines('createLineLogger', { QSCALE_LOG_LEVEL: 'info' });
  assert.equal(pinoLines.lines.length, 4, pinoLines.lines.join('\n'));
  assert.deepEqual(light.lines, pinoLines.lines);
  assert.equal(pinoLines.loadedPino, true);
  assert.equal(light.loadedPino, false, 'pino stays unloaded');
  assert.deepEqual(lines('createLineLogger', { QSCALE_LOG_LEVEL: 'debug' }).lines, lines('createLogger', { QSCALE_LOG_LEVEL: 'debug' }).lines);
  assert.deepEqual(lines('createLineLogger', { QSCALE_LOG_LEVEL: 'error' }).lines, lines('createLogger', { QSCALE_LOG_LEVEL: 'error' }).lines);
});

test('log - with QSCALE_LOG_FORMAT=json the line logger writes pino JSON lines', { timeout: 60_000 }, () => {
  const light = lines('createLineLogger', { QSCALE_LOG_FORMAT: 'json' });
  assert.deepEqual(light.lines, lines('createLogger', { QSCALE_LOG_FORMAT: 'json' }).lines);
  assert.match(light.lines[0]!, /^\{"level":30,"time":T,/);
});
