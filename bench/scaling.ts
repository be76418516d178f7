/**
 * Scaling figures through the real supervisor (`startSystem`, what `qscale up` runs):
 * 1. scale-from-zero latency: a message lands on an empty queue at 0 replicas → the first message processed
 *    (the consumer's "Finished at" line, WORK_MS=0), with qscale's instant activation and with KEDA's pure polling;
 * 2. the seed scenario's drain time (50 messages, 5 s of work, max 10) with a behavior that lets the HPA go straight
 *    to 10, against the ideal ceil(50 / 10) × 5 s.
 * `--from-zero-only` measures 1 only: no warm standby, the warm sidecar alone, the warm sidecar and app runtime, interleaved; `--seed-ports` puts the apps on
 * the seed's fixed appPorts (consumer 6000, producer 5000), as `npm start` runs them.
 */
import { CountingLogs, benchFolder, memoryOf, mib, runFileFor, seedComponent } from './system.js';
import { readFileSync } from 'node:fs';
import type { RunningSystem } from '../src/supervisor/system.js';
import { SpanLogs, fromZero, scaledObject, send, start, until } from './lib/scale-from-zero.js';
import { machineLine, percentile, writeSection } from './report.js';

async function seedDrain(syncPeriodMs: number): Promise<{ seconds: number; peak: number }> {
  const folder = benchFolder({
    'binding.yaml': seedComponent(),
    'scaling.yaml': scaledObject(30, 300, 300),
    'dapr.yaml': runFileFor({ WORK_MS: '5000' }),
  });
  const logs = new CountingLogs();
  const sys = await start(folder, logs, syncPeriodMs, true);
  const consumer = sys.deployments.get('consumer')!;
  let peak = 0;
  const watch = setInterval(() => (peak = Math.max(peak, consumer.current)), 50);
  try {
    await until(() => sys.deployments.get('producer')!.readyCount === 1 && consumer.current === 0, 'producer ready, consumer at 0');
    const t0 = performance.now();
    await send(sys, 50);
    const done = await logs.until(50);
    return { seconds: (done - t0) / 1000, peak };
  } finally {
    clearInterval(watch);
    await sys.stop();
  }
}

const RUNS = Number(process.env.QSCALE_BENCH_RUNS ?? 7);
const stats = (xs: number[]): string => {
  const s = [...xs].sort((a, b) => a - b);
  return `p50 ${percentile(s, 50).toFixed(0)} ms, min ${s[0]!.toFixed(0)} ms, max ${s[s.length - 1]!.toFixed(0)} ms`;
};
const spans = new SpanLogs();
/** --seed-ports: the apps on the seed's fixed appPorts (consumer 6000, producer 5000), as `npm start` runs them. */
const SEED_PORTS = process.argv.includes('--seed-ports');
if (process.argv.includes('--from-zero-only')) {
  // The instant scale from zero and its spans, with and without the warm sidecar, interleaved in rounds (the machine's
  // load drifts); nothing written.
  const ROUNDS = 2;
  const per = Math.max(1, Math.ceil(RUNS / ROUNDS));
  const sides = [
    { name: 'no warm sidecar', warm: false, app: false },
    { name: 'warm sidecar, no warm app runtime (--no-warm-app)', warm: true, app: false },
    { name: 'warm sidecar and warm app runtime', warm: true, app: true },
  ].map((s) => ({ ...s, ms: [] as number[], spans: new SpanLogs() }));
  const idle: number[] = [];
  const idleApp: number[] = [];
  const idleCpu: number[] = [];
  // What the warm sidecar costs while it waits: its proportional memory once it is idle at 0 replicas.
  const measure = async (sys: RunningSystem): Promise<void> => {
    await until(() => sys.deployments.get('consumer')!.warmSidecar() !== undefined, 'a warm sidecar');
    const w = sys.deployments.get('consumer')!.warmSidecar()!;
    const ticks = (): number => {
      const stat = readFileSync(`/proc/${w.pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(f[11]) + Number(f[12]);
    };
    await new Promise((r) => setTimeout(r, 2000));
    const t = ticks();
    await new Promise((r) => setTimeout(r, 5000));
    idleCpu.push(((ticks() - t) * 10) / 5);
    idle.push(memoryOf(w.pid).pss);
    if (w.appPid !== undefined) idleApp.push(memoryOf(w.appPid).pss);
  };
  for (let round = 0; round < ROUNDS; round++) {
    for (const side of sides) side.ms.push(...(await fromZero(true, per, 30, side.spans, side.warm, side.warm && side.app ? measure : undefined, SEED_PORTS, side.app)));
  }
  console.log(`idle warm sidecar PSS: ${idle.map(mib).join(', ')}; CPU while idle: ${idleCpu.map((x) => `${x.toFixed(1)} ms/s`).join(', ')}`);
  console.log(`idle warm app runtime PSS: ${idleApp.length ? idleApp.map(mib).join(', ') : 'none (the app is not a node script, or --no-warm-app)'}`);
  for (const side of sides) {
    console.log(`scale from zero, instant activation, ${side.name}${SEED_PORTS ? ", the seed's fixed appPorts" : ''} (${side.ms.length} runs): ${stats(side.ms)}`);
    for (const [name, ms] of side.spans.medians()) console.log(`  ${name}: ${Number.isNaN(ms) ? '—' : `${ms.toFixed(0)} ms`}`);
  }
  process.exit(0);
}
const instant = await fromZero(true, RUNS, 30, spans);
console.log(`scale from zero, instant activation (pollingInterval 30 s): ${stats(instant)}`);
for (const [name, ms] of spans.medians()) console.log(`  ${name}: ${ms.toFixed(0)} ms after the send (median)`);
const polled = await fromZero(false, Math.min(RUNS, 5), 5);
console.log(`scale from zero, KEDA polling only (pollingInterval 5 s): ${stats(polled)}`);
const drain15 = await seedDrain(15_000);
console.log(`seed drain, HPA sync 15 s: ${drain15.seconds.toFixed(1)} s (peak ${drain15.peak} replicas; ideal 25 s)`);
const drain1 = await seedDrain(1000);
console.log(`seed drain, HPA sync 1 s: ${drain1.seconds.toFixed(1)} s (peak ${drain1.peak} replicas; ideal 25 s)`);

const sorted = [...instant].sort((a, b) => a - b);
await writeSection('Scaling', `
\`node dist/bench/scaling.js\`: the supervisor of \`qscale up\` (in process, real app and sidecar processes, the embedded
queue), the seed's component and a keda.sh/v1alpha1 ScaledObject (min 0, max 10, messageCount 5).

**Scale from zero** — one message through the producer (\`POST /MessageProducer\`, count 1) while the consumer is at 0
replicas → the consumer's "Finished at" line (\`WORK_MS=0\`): activation, the warm standby adopted (\`qscale up\`'s
default: a sidecar with its components loaded and a node runtime that now runs the consumer's script), the app's port
awaited, the message leased and delivered. ${RUNS} runs, a random 0.3–1 s pause between them. Goal ≤ 0.2 s.
\`node dist/bench/scaling.js --from-zero-only\` compares it with no standby and with the warm sidecar alone.

| activation | p50 | min | max |
|---|---|---|---|
| qscale: the moment a message lands on an empty queue (pollingInterval 30 s as upper bound) | **${percentile(sorted, 50).toFixed(0)} ms** | ${sorted[0]!.toFixed(0)} ms | ${sorted[sorted.length - 1]!.toFixed(0)} ms |
| KEDA's: the next poll (pollingInterval 5 s, \`--no-instant-activation\`) | ${percentile([...polled].sort((a, b) => a - b), 50).toFixed(0)} ms | ${Math.min(...polled).toFixed(0)} ms | ${Math.max(...polled).toFixed(0)} ms |

Where the instant activation's time goes (median over the runs, ms after the send; each step's first sign):

| step | ms |
|---|---|
${spans.medians().map(([name, ms]) => `| ${name} | ${ms.toFixed(0)} |`).join('\n')}
| first message processed | ${percentile(sorted, 50).toFixed(0)} |

**The seed's drain time** — 50 messages at once, 5 s of work each, one at a time per replica, a behavior that lets
the HPA go from 1 straight to 10 (scaleUp Pods 10 per 15 s, no up stabilization; scaleDown keeps the default 300 s window,
so the 10 replicas stay until the queue is empty). Ideal: ceil(50 / 10) × 5 s = 25 s.

| HPA sync period | drain (first send → 50th "Finished at") | peak replicas | over ideal |
|---|---|---|---|
| 15 s (default) | ${drain15.seconds.toFixed(1)} s | ${drain15.peak} | +${(drain15.seconds - 25).toFixed(1)} s |
| 1 s (\`--hpa-sync-period 1s\`) | ${drain1.seconds.toFixed(1)} s | ${drain1.peak} | +${(drain1.seconds - 25).toFixed(1)} s |

The gap over the ideal is the wait for the HPA's first sync after activation (up to one sync period, the HPA's own
rhythm, kept for fidelity) plus the start of nine replicas at once on two cores.

${machineLine()}
`);
process.exit(0);
