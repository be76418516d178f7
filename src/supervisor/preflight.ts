/**
 * What `qscale up` needs from the machine before it starts anything: each run-file command can be found the way
 * spawn will look for it (a path relative to appDirPath, or a name on PATH), each appDirPath is a folder, and each
 * fixed port is free. `qscale validate` runs the same checks, so it passes exactly when `up` can start.
 */
import { promises as fs, constants as fsc } from 'node:fs';
import path from 'node:path';
import type { RunFile, RunFileApp } from './runfile.js';
import { portFree } from './ports.js';
import type { Problem } from './plan.js';

/** A port the run file (or a flag) fixes: it must be free when `up` starts. */
export interface FixedPort {
  port: number;
  /** "app producer: appPort" or "--control-port" */
  what: string;
  file?: string;
  line?: number;
  field?: string;
}

async function isExecutableFile(p: string): Promise<boolean> {
  try {
    const st = await fs.stat(p);
    if (!st.isFile()) return false;
    await fs.access(p, fsc.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The file spawn would execute for `command` run in `cwd`: a name with a slash is taken relative to cwd, a bare name
 * is looked up on PATH (the app's own PATH when its env sets one, as spawn does). Undefined when there is none.
 */
export async function resolveCommand(command: string, cwd: string, pathEnv: string | undefined): Promise<string | undefined> {
  if (command.includes('/')) {
    const p = path.resolve(cwd, command);
    return (await isExecutableFile(p)) ? p : undefined;
  }
  for (const dir of (pathEnv ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const p = path.resolve(cwd, dir, command);
    if (await isExecutableFile(p)) return p;
  }
  return undefined;
}

function at(runFile: RunFile, app: RunFileApp, field: string): { file: string; line: number; field: string } {
  return { file: runFile.file, line: app.lines[field] ?? app.line, field: `apps[${app.index}].${field}` };
}

/** appDirPath is a folder and the command can be started from it. */
export async function checkAppCommand(runFile: RunFile, app: RunFileApp): Promise<Problem[]> {
  const dir = at(runFile, app, 'appDirPath');
  const st = await fs.stat(app.appDir).catch(() => undefined);
  if (!st?.isDirectory()) {
    return [{
      code: 'ERR_COMMAND',
      message: `${dir.file}:${dir.line}: app ${app.appId}: appDirPath ${app.appDir} ${st ? 'is not a folder' : 'does not exist'}: fix ${dir.field}`,
      ...dir,
    }];
  }
  const cmd = app.command[0]!;
  const pathEnv = app.env.PATH ?? process.env.PATH;
  if (await resolveCommand(cmd, app.appDir, pathEnv)) return [];
  const where = at(runFile, app, 'command');
  const looked = cmd.includes('/') ? `no executable file ${path.resolve(app.appDir, cmd)}` : `'${cmd}' is not on PATH`;
  return [{
    code: 'ERR_COMMAND',
    message: `${where.file}:${where.line}: app ${app.appId}: command '${cmd}' cannot be started (${looked}): install it or fix ${where.field}`,
    ...where,
  }];
}

/** The run file's fixed ports: appPort and daprHTTPPort of every app. */
export function runFilePorts(runFile: RunFile): FixedPort[] {
  const out: FixedPort[] = [];
  for (const app of runFile.apps) {
    if (app.appPort !== undefined) out.push({ port: app.appPort, what: `app ${app.appId}: appPort`, ...at(runFile, app, 'appPort') });
    if (app.daprHttpPort !== undefined) out.push({ port: app.daprHttpPort, what: `app ${app.appId}: daprHTTPPort`, ...at(runFile, app, 'daprHTTPPort') });
  }
  return out;
}

function place(p: FixedPort): string {
  return p.file ? `${p.file}${p.line ? `:${p.line}` : ''}: ` : '';
}

/** Each fixed port given once, and free on loopback now. */
export async function checkPorts(ports: readonly FixedPort[]): Promise<Problem[]> {
  const problems: Problem[] = [];
  const first = new Map<number, FixedPort>();
  for (const p of ports) {
    const prev = first.get(p.port);
    if (prev) {
      problems.push({ code: 'ERR_CONFIG', message: `${place(p)}${p.what} ${p.port} is also ${prev.what} (${prev.file ?? ''}${prev.line ? `:${prev.line}` : ''}): give each its own port`, file: p.file, line: p.line, field: p.field });
      continue;
    }
    first.set(p.port, p);
  }
  const checked = await Promise.all([...first.values()].map(async (p) => ({ p, free: await portFree(p.port) })));
  for (const { p, free } of checked) {
    if (free) continue;
    const fix = p.field ? `stop what listens there or change ${p.field}` : `stop what listens there or pick another port`;
    problems.push({ code: 'ERR_PORT_IN_USE', message: `${place(p)}${p.what} ${p.port} is in use by another process: ${fix}`, file: p.file, line: p.line, field: p.field });
  }
  return problems;
}
