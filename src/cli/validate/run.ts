import path from 'node:path';
import { loadManifests } from '../../components/manifests.js';
import { resolveResources } from '../../components/resources.js';
import { loadScaledObjects } from '../../autoscaler/index.js';
import { findBackend, findTrigger } from '../../backends/registry.js';
import { findRunFile, loadRunFile } from '../../supervisor/runfile.js';
import { QscaleError, errorMessage } from '../../errors.js';

interface Finding {
  kind: string;
  name: string;
  where: string;
  note: string;
}

/** Returns the exit code: 0 when everything reads, 1 on the first error (printed with file:line). */
export async function runValidate(folder: string, opts: { json: boolean }): Promise<number> {
  const found: Finding[] = [];
  const notices: string[] = [];
  try {
    const manifests = await loadManifests([folder]);
    const runPath = await findRunFile(folder);
    const runFile = runPath ? await loadRunFile(runPath) : undefined;
    if (runFile) {
      notices.push(...runFile.notices);
      for (const a of runFile.apps) found.push({ kind: 'App', name: a.appId, where: `${path.relative(process.cwd(), runFile.file)}:${a.line}`, note: a.command.join(' ') });
    }
    const res = resolveResources(manifests, { env: { ...process.env, ...Object.assign({}, ...(runFile?.apps.map((a) => a.env) ?? [])) } });
    notices.push(...res.notices);
    for (const c of res.components) {
      const def = findBackend(c.type);
      if (!def) throw new QscaleError('ERR_CONFIG', `${c.file}:${c.line}: component ${c.name}: unsupported binding type '${c.type}'`);
      def.metadata.parse(c.metadata, { subject: `component ${c.name} (${c.type})`, where: c.where });
      found.push({ kind: 'Component', name: c.name, where: `${c.file}:${c.line}`, note: `${c.type}, queue ${def.queueName(c)}` });
    }
    const scaling = loadScaledObjects(manifests, { secrets: res.secrets, env: (appId: string) => runFile?.apps.find((a) => a.appId === appId)?.env ?? {} });
    notices.push(...scaling.notices);
    for (const so of scaling.scaledObjects) {
      for (const t of so.triggers) {
        const def = findTrigger(t.type);
        if (!def) {
          const w = t.where('type');
          throw new QscaleError('ERR_CONFIG', `${w.file}:${w.line}: ${t.subject}: trigger type '${t.type}' is not supported locally`);
        }
        const q = def.parseQueueParams(t);
        found.push({ kind: 'Trigger', name: `${so.spec.name}/${t.type}`, where: `${so.spec.file}:${so.spec.line}`, note: `queue ${q.queueName}, target ${q.target}, activation ${q.activationTarget}` });
      }
      found.push({ kind: 'ScaledObject', name: so.spec.name, where: `${so.spec.file}:${so.spec.line}`, note: `${so.spec.target}: ${so.spec.minReplicaCount}..${so.spec.maxReplicaCount}` });
    }
    for (const s of res.skipped) found.push({ kind: s.kind, name: s.name, where: `${s.file}:${s.line}`, note: `skipped: ${s.reason}` });
  } catch (err) {
    if (opts.json) process.stdout.write(JSON.stringify({ ok: false, error: errorMessage(err), found, notices }, null, 2) + '\n');
    else process.stderr.write(`qscale: ${errorMessage(err)}\n`);
    return 1;
  }
  if (opts.json) {
    process.stdout.write(JSON.stringify({ ok: true, found, notices }, null, 2) + '\n');
  } else {
    for (const f of found) process.stdout.write(`${f.kind.padEnd(22)} ${f.name.padEnd(36)} ${f.where}  ${f.note}\n`);
    for (const n of notices) process.stdout.write(`note: ${n}\n`);
    process.stdout.write(`ok: ${found.length} entries read\n`);
  }
  return 0;
}
