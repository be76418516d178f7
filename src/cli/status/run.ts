import { request } from 'undici';
import { QscaleError } from '../../errors.js';
import { CliError } from '../codes.js';
import { fmt } from '../../autoscaler/state.js';
import { readSupervisorFile, type SystemStatus } from '../../supervisor/state.js';

export async function runStatus(opts: { watch: boolean; json: boolean; dataDir: string; url?: string }): Promise<void> {
  const url = opts.url ?? (await readSupervisorFile(opts.dataDir))?.controlUrl;
  if (!url) {
    throw new CliError('ERR_NOT_RUNNING', `no running system found (no ${opts.dataDir}/supervisor.json): start one with \`qscale up\`, or pass --url`);
  }
  const fetchOnce = async (): Promise<SystemStatus> => {
    try {
      const res = await request(`${url}/status`, { headersTimeout: 3000, bodyTimeout: 3000 });
      if (res.statusCode !== 200) throw new CliError('ERR_STATUS', `supervisor at ${url} answered ${res.statusCode}: ${await res.body.text()}`);
      return (await res.body.json()) as SystemStatus;
    } catch (err) {
      if (err instanceof QscaleError) throw err;
      throw new CliError('ERR_NOT_RUNNING', `cannot reach the supervisor at ${url} (is \`qscale up\` still running?)`);
    }
  };
  if (!opts.watch) {
    const s = await fetchOnce();
    process.stdout.write(opts.json ? JSON.stringify(s, null, 2) + '\n' : renderStatus(s));
    return;
  }
  for (;;) {
    const s = await fetchOnce();
    if (opts.json) process.stdout.write(JSON.stringify(s) + '\n');
    else process.stdout.write('\x1b[2J\x1b[H' + renderStatus(s));
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function age(seconds: number): string {
  if (seconds < 120) return `${Math.floor(seconds)}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  return `${Math.floor(seconds / 3600)}h`;
}

export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 3))).join('').trimEnd()).join('\n') + '\n';
}

function triggerLine(t: SystemStatus['scaledObjects'][number]['triggers'][number]): string {
  const name = `trigger ${t.index} (${t.type}${t.name ? `, name ${t.name}` : ''})`;
  const goal = `target ${fmt(t.target)}${t.metricType === 'AverageValue' ? ' per replica' : ''}, activation ${fmt(t.activationTarget)}`;
  if (t.error !== undefined) return `${name}: ERROR ${t.error}${t.value !== undefined ? ` (last value ${fmt(t.value)})` : ''}`;
  if (t.value === undefined) return `${name}: not read yet; ${goal}`;
  return `${name}: ${fmt(t.value)} (${t.describes}); ${goal}`;
}

/** kubectl's columns, so the seed's `kubectl get pod` / `kubectl get hpa` read the same locally. */
export function renderStatus(s: SystemStatus): string {
  let out = '';
  const pods = [['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', 'IN FLIGHT']];
  for (const r of s.replicas) {
    pods.push([r.name, r.ready ? '2/2' : r.status === 'Terminating' ? '2/2' : '0/2', r.status, String(r.restarts), age(r.ageSeconds), String(r.inFlight)]);
  }
  out += table(pods);
  for (const w of s.warmSidecars ?? []) {
    const app = w.appPid !== undefined ? ` and warm app runtime, pid ${w.appPid}` : '';
    out += `(warm sidecar for ${w.appId}'s next replica: ${w.name}, pid ${w.pid ?? '?'}${app}; not a replica)\n`;
  }
  out += '\n';
  const hpa = [['NAME', 'REFERENCE', 'TARGETS', 'MINPODS', 'MAXPODS', 'REPLICAS']];
  for (const h of s.hpa) hpa.push([h.name, h.reference, h.targets, String(h.minPods), String(h.maxPods), String(h.replicas)]);
  if (s.hpa.length > 0) out += table(hpa) + '\n';
  const sos = s.scaledObjects ?? [];
  if (sos.length > 0) {
    const rows = [['NAME', 'SCALETARGETNAME', 'MIN', 'MAX', 'READY', 'ACTIVE', 'FALLBACK', 'PAUSED', 'TRIGGERS']];
    for (const so of sos) {
      const c = so.conditions;
      rows.push([so.name, so.scaleTargetName, String(so.min), String(so.max), c.ready.status, c.active.status, c.fallback.status, c.paused.status, so.triggers.map((t) => t.type).join(',')]);
    }
    out += table(rows);
    for (const so of sos) {
      if (so.conditions.ready.status !== 'True') out += `  ${so.name} Ready ${so.conditions.ready.status} (${so.conditions.ready.reason}): ${so.conditions.ready.message}\n`;
      for (const t of so.triggers) out += `  ${so.name} ${triggerLine(t)}\n`;
    }
    out += '\n';
  }
  for (const q of s.queues) {
    out += q.error
      ? `QUEUE ${q.queue} (${q.binding}): depth cannot be read: ${q.error}\n`
      : `QUEUE ${q.queue} (${q.binding}): ready ${q.ready}, in flight ${q.inFlight}, dead-lettered ${q.deadLettered}\n`;
  }
  for (const o of s.outlook ?? []) {
    const next = [o.backlog?.text, o.cooldown?.text].filter((t) => t !== undefined);
    if (next.length > 0) out += `NEXT ${o.scaledObject}: ${next.join('; ')}\n`;
  }
  if (s.decisions.length > 0) {
    out += '\nLAST DECISIONS\n';
    for (const d of s.decisions.slice(-10)) {
      out += `${new Date(d.at).toISOString().slice(11, 19)}  ${d.scaledObject}  ${d.kind.padEnd(4)}  ${d.from} → ${d.to}  ${d.reason}\n`;
    }
  }
  return out;
}
