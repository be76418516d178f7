/**
 * A warm app runtime: a node process started ahead for a scaled app's next replica, with the replica's working
 * directory and environment (its APP_PORT and DAPR_HTTP_PORT included), that has loaded none of the app's code. It
 * waits for one line on fd 3 — `{"argv":["dist/consumer.js", ...]}` — then becomes the app: process.argv is what
 * `node dist/consumer.js ...` would have, and the script runs as node's main module (require.main, import.meta.url,
 * an uncaught error's exit code 1, all as node gives them). A scale-up then skips node's own start.
 *
 * fd 3 is a pipe from the supervisor: its end before the line came (the supervisor is gone, even by SIGKILL) ends the
 * runtime, which has run nothing. Once the app runs, fd 3 is closed and the process is the app's alone.
 */
import net from 'node:net';
import path from 'node:path';
import Module from 'node:module';

interface Launch {
  argv: string[];
}

function parse(line: string): Launch {
  const spec = JSON.parse(line) as Partial<Launch>;
  if (!Array.isArray(spec.argv) || spec.argv.length === 0 || !spec.argv.every((a) => typeof a === 'string')) {
    throw new Error(`warm app runtime: the launch line needs argv, a non-empty list of strings; got ${line.slice(0, 200)}`);
  }
  return spec as Launch;
}

const input = new net.Socket({ fd: 3, readable: true, writable: false });
const gone = (): never => process.exit(0);
input.on('end', gone);
input.on('error', gone);
let buffered = '';
input.setEncoding('utf8');
input.on('data', (chunk: string) => {
  buffered += chunk;
  const nl = buffered.indexOf('\n');
  if (nl === -1) return;
  const launch = parse(buffered.slice(0, nl));
  input.removeAllListeners();
  input.on('error', () => undefined);
  input.destroy();
  // node resolves the script to an absolute path in argv[1] before it runs it; runMain reads it from there.
  process.argv.splice(1, process.argv.length - 1, path.resolve(launch.argv[0]!), ...launch.argv.slice(1));
  (Module as unknown as { runMain(): void }).runMain();
});
