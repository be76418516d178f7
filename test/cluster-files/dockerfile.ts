/**
 * A Dockerfile and .dockerignore read the way `docker build` reads them, for checking them against the manifests
 * without a Docker engine: stages, the files each COPY brings in, EXPOSE, USER, CMD/ENTRYPOINT, ENV.
 */
import path from 'node:path';

export interface Instruction {
  op: string;
  args: string;
  line: number;
}

export interface Copy {
  /** The stage copied from; undefined for the build context. */
  from: string | undefined;
  sources: string[];
  /** Absolute in the image. */
  dest: string;
  line: number;
}

export interface Stage {
  image: string;
  name: string | undefined;
  instructions: Instruction[];
  /** WORKDIR in effect at the end of the stage. */
  workdir: string;
  copies: Copy[];
  runs: string[];
  env: Record<string, string>;
  exposed: number[];
  user: string | undefined;
  cmd: string[] | undefined;
  entrypoint: string[] | undefined;
}

/** Parses a Dockerfile: comments, line continuations, exec-form (JSON) and shell-form CMD/ENTRYPOINT. */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let raw = lines[i]!.trim();
    if (raw === '' || raw.startsWith('#')) continue;
    while (raw.endsWith('\\') && i + 1 < lines.length) {
      i++;
      const next = lines[i]!.trim();
      raw = raw.slice(0, -1).trimEnd() + (next.startsWith('#') ? '' : ' ' + next);
    }
    const m = /^(\w+)\s+(.*)$/.exec(raw);
    if (!m) throw new Error(`Dockerfile:${start}: cannot read '${raw}'`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === 'FROM') {
      const f = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`Dockerfile:${start}: cannot read FROM '${args}'`);
      stages.push({ image: f[1]!, name: f[2], instructions: [], workdir: '/', copies: [], runs: [], env: {}, exposed: [], user: undefined, cmd: undefined, entrypoint: undefined });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile:${start}: ${op} before FROM`);
    stage.instructions.push({ op, args, line: start });
    switch (op) {
      case 'WORKDIR':
        stage.workdir = path.posix.resolve(stage.workdir, args);
        break;
      case 'COPY':
      case 'ADD': {
        const words = args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
        const flags = words.filter((w) => w.startsWith('--'));
        const rest = words.filter((w) => !w.startsWith('--'));
        const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
        stage.copies.push({ from, sources: rest.slice(0, -1), dest: path.posix.resolve(stage.workdir, rest.at(-1)!), line: start });
        break;
      }
      case 'RUN':
        stage.runs.push(args);
        break;
      case 'ENV': {
        const kv = /^(\S+?)[=\s]+(.*)$/.exec(args);
        if (kv) stage.env[kv[1]!] = kv[2]!.replace(/^"(.*)"$/, '$1');
        break;
      }
      case 'EXPOSE':
        stage.exposed.push(...args.split(/\s+/).map((p) => Number(p.split('/')[0])));
        break;
      case 'USER':
        stage.user = args;
        break;
      case 'CMD':
        stage.cmd = args.startsWith('[') ? (JSON.parse(args) as string[]) : ['/bin/sh', '-c', args];
        break;
      case 'ENTRYPOINT':
        stage.entrypoint = args.startsWith('[') ? (JSON.parse(args) as string[]) : ['/bin/sh', '-c', args];
        break;
      default:
        break;
    }
  }
  return stages;
}

/**
 * Where a file at `imagePath` in `stage` comes from: the COPY that put it there (the last one wins, as in the image),
 * and the path in the source stage or build context. undefined when no COPY brought it.
 */
export function origin(stage: Stage, imagePath: string): { copy: Copy; sourcePath: string } | undefined {
  for (const copy of [...stage.copies].reverse()) {
    for (const src of copy.sources) {
      const base = copy.from ? src : src.replace(/^\.\//, '');
      const isDirCopy = copy.sources.length === 1 && !copy.dest.endsWith('/') && !/\.\w+$/.test(path.posix.basename(base));
      if (isDirCopy) {
        // COPY dir dest: dest holds dir's contents.
        const rel = path.posix.relative(copy.dest, imagePath);
        if (!rel.startsWith('..') && !path.posix.isAbsolute(rel)) return { copy, sourcePath: path.posix.join(base, rel) };
      } else if (path.posix.join(copy.dest, path.posix.basename(base)) === imagePath) {
        return { copy, sourcePath: base };
      }
    }
  }
  return undefined;
}

/**
 * .dockerignore as `docker build` applies it: each line a pattern (Go filepath.Match, `**` for any depth), `!`
 * re-includes, the last matching line wins, and a pattern that matches a folder matches everything in it.
 */
export function dockerIgnored(ignoreText: string, file: string): boolean {
  const patterns = ignoreText
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const p = path.posix.normalize((negate ? l.slice(1) : l).trim()).replace(/^\/+/, '').replace(/\/+$/, '');
      const re = p
        .split('/')
        .map((seg) => (seg === '**' ? '.*' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
        .join('/')
        .replace(/\.\*\//g, '(?:.*/)?');
      return { negate, re: new RegExp(`^${re}$`) };
    });
  const parts = path.posix.normalize(file).split('/');
  let ignored = false;
  for (const { negate, re } of patterns) {
    for (let n = 1; n <= parts.length; n++) {
      if (re.test(parts.slice(0, n).join('/'))) {
        ignored = !negate;
        break;
      }
    }
  }
  return ignored;
}
