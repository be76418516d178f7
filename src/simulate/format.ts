/** The simulator's timeline and summary as text, the way a terminal shows `kubectl get hpa --watch`. */
import type { Summary, TimelineRow } from './model.js';

export function clock(seconds: number): string {
  const s = Math.floor(seconds);
  const ms = Math.round((seconds - s) * 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const base = h > 0 ? `${h}:${pad(m)}:${pad(sec)}` : `${pad(m)}:${pad(sec)}`;
  return ms > 0 ? `${base}.${String(ms).padStart(3, '0')}` : base;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

export function formatTimeline(rows: readonly TimelineRow[]): string {
  const head = ['TIME', 'QUEUE', 'IN FLIGHT', 'DESIRED', 'REPLICAS', 'REASON'];
  const cells = rows.map((r) => [clock(r.t), String(r.queue), String(r.inFlight), String(r.desired), String(r.replicas), r.reason]);
  const widths = head.slice(0, 5).map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c.map((v, i) => (i < 5 ? (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!)) : v)).join('  ').trimEnd();
  return [line(head), ...cells.map(line)].join('\n');
}

export function formatSummary(s: Summary): string {
  return [
    `messages: ${s.messages} arrived, ${s.processed} processed`,
    `drained: ${s.drainSeconds === null ? 'no (work left at the end)' : `at ${clock(s.drainSeconds)} (${s.drainSeconds}s)`}`,
    `peak replicas: ${s.peakReplicas}`,
    `replica-seconds: ${s.replicaSeconds}`,
    `longest wait in the queue: ${s.maxWaitSeconds}s`,
    `scaling decisions: ${s.decisions}`,
  ].join('\n');
}
