// The qscale dashboard: reads the supervisor's GET /status, GET /history and GET /logs every second and draws them.
// Plain ES module, no build step; the chart is uPlot, served by the supervisor from node_modules.
import uPlot from './uPlot.esm.js';

const POLL_MS = 1000;
/** Data older than this (by the supervisor's clock) is stale. */
const STALE_MS = 3000;
const REQUEST_TIMEOUT_MS = 4000;
const DLQ_EVERY_MS = 5000;
const LOG_LINES_SHOWN = 8;

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });

function age(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h`;
}

async function getJson(path) {
  const res = await fetch(path, { cache: 'no-store', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  if (!res.ok) throw new Error(`GET ${path} answered ${res.status}`);
  return res.json();
}

// ---- state --------------------------------------------------------------------------------------------------

const state = {
  /** "at" of the newest sample held; the next /history asks only for later ones. */
  lastAt: 0,
  capacity: 900,
  /** The window each sample's latency p50/p95 are taken over (GET /history's latencyWindowMs). */
  latencyWindowMs: 30_000,
  /** ScaledObject name → its panel: chart, rate chart, columns of samples. */
  panels: new Map(),
  decisions: [],
  /** When data was last fresh (ms, the supervisor's clock); the stale banner says since when. */
  freshAt: undefined,
  stale: false,
  openLogs: new Set(),
};

// For tests and for a look from the browser's console: what the charts hold right now.
window.qscaleDashboard = {
  get stale() { return state.stale; },
  get freshAt() { return state.freshAt; },
  scaledObjects: () => [...state.panels.keys()],
  /** The data the chart of a ScaledObject draws, read back from uPlot. */
  chartData(name) {
    const p = state.panels.get(name);
    if (!p) return undefined;
    const [x, ready, inFlight, deadLettered, desired, actual] = p.chart.data;
    const processedPerSecond = p.rateChart.data[1];
    const [, latencyP50Ms, latencyP95Ms] = p.latencyChart.data;
    return {
      x: [...x], ready: [...ready], inFlight: [...inFlight], deadLettered: [...deadLettered], desired: [...desired], actual: [...actual],
      processedPerSecond: [...processedPerSecond], latencyP50Ms: [...latencyP50Ms], latencyP95Ms: [...latencyP95Ms],
    };
  },
};

// ---- charts -------------------------------------------------------------------------------------------------

/** Draws each scaling decision as a vertical marker and shows its reason when the cursor is on it. */
function decisionMarkers(panel) {
  const near = (u, left) => {
    let best;
    for (const d of panel.decisions()) {
      const x = u.valToPos(d.at / 1000, 'x');
      const dist = Math.abs(x - left);
      if (dist <= 6 && (!best || dist < best.dist)) best = { d, dist, x };
    }
    return best;
  };
  return {
    hooks: {
      draw: [(u) => {
        const { ctx } = u;
        const { top, height } = u.bbox;
        const [min, max] = [u.scales.x.min, u.scales.x.max];
        ctx.save();
        for (const d of panel.decisions()) {
          const t = d.at / 1000;
          if (t < min || t > max) continue;
          const x = Math.round(u.valToPos(t, 'x', true));
          ctx.strokeStyle = d.to > d.from ? '#b35c00' : '#5b5bd6';
          ctx.lineWidth = 1.5 * devicePixelRatio;
          ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.setLineDash([]);
          ctx.fillStyle = ctx.strokeStyle;
          ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
          ctx.fillText(`→${d.to}`, x + 3 * devicePixelRatio, top + 12 * devicePixelRatio);
        }
        ctx.restore();
      }],
      setCursor: [(u) => {
        const tip = panel.tooltip;
        const hit = u.cursor.left >= 0 ? near(u, u.cursor.left) : undefined;
        if (!hit) {
          tip.hidden = true;
          return;
        }
        tip.hidden = false;
        tip.textContent = `${clock(hit.d.at)} ${hit.d.kind} ${hit.d.from} → ${hit.d.to}: ${hit.d.reason}`;
        tip.style.left = `${Math.min(hit.x + 8, u.over.clientWidth - 260)}px`;
      }],
    },
  };
}

function chartWidth(container) {
  return Math.max(320, container.clientWidth - 8);
}

/** A latency in ms as people read it: "850 ms", "3.2 s", "2m05s". */
function duration(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Math.round(ms / 100) / 10} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** "p50 3.2 s, p95 7.9 s (42 acks in the last 30 s)", or why there is no figure; and a line per broker without enqueue time. */
function latencyText(l) {
  const window = `the last ${Math.round(state.latencyWindowMs / 1000)} s`;
  const lat = l.latency;
  if (!lat) return { head: 'Enqueue → ack latency: not reported by this supervisor', notes: [] };
  const head = lat.samples === 0
    ? `Enqueue → ack latency: no ack with an enqueue time in ${window}`
    : `Enqueue → ack latency: p50 ${duration(lat.p50Ms)}, p95 ${duration(lat.p95Ms)} (${lat.samples} ack${lat.samples === 1 ? '' : 's'} in ${window})`;
  const notes = lat.withoutEnqueueTime.map((m) => `latency: no enqueue time from ${m.broker.replace(/^bindings\./, '')} (${m.messages} message${m.messages === 1 ? '' : 's'} in ${window} give no latency)`);
  return { head, notes };
}

function makePanel(so) {
  const root = el('article', { class: 'scaled-object', 'aria-labelledby': `so-${so.name}` });
  root.append(el('h3', { id: `so-${so.name}`, text: `ScaledObject ${so.name} → app ${so.appId}` }));
  const facts = el('ul', { class: 'facts' });
  root.append(facts);
  const chartBox = el('div', { class: 'chart', role: 'img', 'data-scaled-object': so.name });
  const tooltip = el('div', { class: 'tooltip', role: 'tooltip' });
  tooltip.hidden = true;
  root.append(chartBox);
  const rateBox = el('div', { class: 'chart rate', role: 'img' });
  const latencyBox = el('div', { class: 'chart latency', role: 'img' });
  const latencyTitle = el('h4', { text: 'Enqueue → ack latency' });
  const latencyNotes = el('ul', { class: 'facts latency-notes' });
  root.append(el('div', { class: 'chart-pair' },
    el('div', {}, el('h4', { text: 'Messages processed per second' }), rateBox),
    el('div', {}, latencyTitle, latencyNotes, latencyBox)));
  const decisionsTitle = el('h4', { text: 'Scaling decisions' });
  const list = el('ol', { class: 'decisions', reversed: '' });
  root.append(decisionsTitle, list);
  $('#scaled-objects .placeholder')?.remove();
  $('#scaled-objects').append(root);

  const columns = [[], [], [], [], [], []];
  const rateColumns = [[], []];
  const latencyColumns = [[], [], []];
  const panel = {
    name: so.name, root, facts, chartBox, rateBox, tooltip, list, columns, rateColumns, chart: undefined, rateChart: undefined,
    latencyBox, latencyTitle, latencyNotes, latencyColumns, latencyChart: undefined,
    decisions: () => state.decisions.filter((d) => d.scaledObject === so.name),
  };
  const stepped = uPlot.paths.stepped({ align: 1 });
  panel.chart = new uPlot({
    width: chartWidth(chartBox),
    height: 300,
    scales: {
      x: { time: true },
      msgs: { range: (_u, _min, max) => [0, Math.max(5, max ?? 0)] },
      reps: { range: (_u, _min, max) => [0, Math.max(so.max ?? 1, max ?? 0, 1)] },
    },
    axes: [
      {},
      { scale: 'msgs', label: 'messages' },
      { scale: 'reps', label: 'replicas', side: 1, grid: { show: false } },
    ],
    series: [
      {},
      { label: 'ready', scale: 'msgs', stroke: '#1f77b4', fill: 'rgba(31,119,180,0.12)', width: 2 },
      { label: 'in flight', scale: 'msgs', stroke: '#2ca02c', width: 2 },
      { label: 'dead-lettered', scale: 'msgs', stroke: '#d62728', width: 2 },
      { label: 'desired replicas', scale: 'reps', stroke: '#9467bd', width: 2, dash: [6, 4], paths: stepped },
      { label: 'actual replicas', scale: 'reps', stroke: '#ff7f0e', width: 2, paths: stepped },
    ],
    plugins: [decisionMarkers(panel)],
  }, columns, chartBox);
  panel.chart.over.append(tooltip);
  panel.rateChart = new uPlot({
    width: chartWidth(rateBox),
    height: 140,
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max ?? 0)] } },
    axes: [{}, { label: 'msg/s' }],
    series: [{}, { label: 'processed/s', stroke: '#17becf', width: 2, fill: 'rgba(23,190,207,0.12)' }],
  }, rateColumns, rateBox);
  panel.latencyChart = new uPlot({
    width: chartWidth(latencyBox),
    height: 140,
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1000, max ?? 0)] } },
    axes: [{}, { label: 'latency', size: 64, values: (_u, splits) => splits.map((v) => duration(v)) }],
    series: [
      {},
      { label: 'p50', stroke: '#2ca02c', width: 2, value: (_u, v) => duration(v) },
      { label: 'p95', stroke: '#d62728', width: 2, dash: [6, 3], value: (_u, v) => duration(v) },
    ],
  }, latencyColumns, latencyBox);
  state.panels.set(so.name, panel);
  return panel;
}

window.addEventListener('resize', () => {
  for (const p of state.panels.values()) {
    p.chart.setSize({ width: chartWidth(p.chartBox), height: 300 });
    p.rateChart.setSize({ width: chartWidth(p.rateBox), height: 140 });
    p.latencyChart.setSize({ width: chartWidth(p.latencyBox), height: 140 });
  }
});

function ingest(samples, status) {
  for (const s of samples) {
    for (const so of s.scaledObjects) {
      const bounds = status?.scaledObjects?.find((x) => x.name === so.name);
      const panel = state.panels.get(so.name) ?? makePanel({ name: so.name, appId: so.appId, max: bounds?.max });
      const c = panel.columns;
      c[0].push(s.at / 1000);
      c[1].push(so.queueReady);
      c[2].push(so.queueInFlight);
      c[3].push(so.deadLettered);
      c[4].push(so.desired);
      c[5].push(so.actual);
      panel.rateColumns[0].push(s.at / 1000);
      panel.rateColumns[1].push(so.processedPerSecond);
      panel.latencyColumns[0].push(s.at / 1000);
      panel.latencyColumns[1].push(so.latency?.p50Ms ?? null);
      panel.latencyColumns[2].push(so.latency?.p95Ms ?? null);
      panel.last = so;
      for (const col of [...c, ...panel.rateColumns, ...panel.latencyColumns]) if (col.length > state.capacity) col.splice(0, col.length - state.capacity);
    }
    state.lastAt = Math.max(state.lastAt, s.at);
  }
  const placeholder = $('#scaled-objects .placeholder');
  if (placeholder && samples.length > 0 && state.panels.size === 0) placeholder.textContent = 'this system scales nothing: its folder has no ScaledObject';
  for (const p of state.panels.values()) {
    p.chart.setData(p.columns);
    p.rateChart.setData(p.rateColumns);
    p.latencyChart.setData(p.latencyColumns);
    const l = p.last;
    if (l) {
      const queue = l.queueReady === null ? 'queue depth unknown' : `queue ${l.queueReady} ready, ${l.queueInFlight} in flight, ${l.deadLettered} dead-lettered`;
      p.chartBox.setAttribute('aria-label', `${queue}; replicas ${l.desired} desired, ${l.actual} actual`);
      p.chartBox.dataset.actual = String(l.actual);
      p.chartBox.dataset.desired = String(l.desired);
      const rate = l.processedPerSecond === null ? 'not measured yet' : `${Math.round(l.processedPerSecond * 100) / 100} msg/s`;
      p.rateBox.setAttribute('aria-label', `messages processed per second: ${rate}; ${l.processed} processed since start`);
      const lat = latencyText(l);
      p.latencyBox.setAttribute('aria-label', lat.head);
      if (p.latencyTitle.textContent !== lat.head) p.latencyTitle.textContent = lat.head;
      p.latencyNotes.replaceChildren(...lat.notes.map((text) => el('li', { text })));
    }
  }
}

// ---- the rest of the page -----------------------------------------------------------------------------------

function renderSystem(status) {
  const parts = [`supervisor pid ${status.pid}, up since ${clock(status.startedAt)}`];
  if (status.embedded) parts.push('embedded queue');
  parts.push(status.producerUrl ? `producer ${status.producerUrl}` : 'producer not ready');
  $('#system').textContent = parts.join(' · ');
  $('#produce button').disabled = false;
}

function renderScaledObjects(status) {
  for (const so of status.scaledObjects ?? []) {
    const panel = state.panels.get(so.name);
    if (!panel) continue;
    const facts = [];
    const hpa = status.hpa.find((h) => h.reference === `Deployment/${so.scaleTargetName}`);
    if (hpa) facts.push([`HPA ${hpa.name}: targets ${hpa.targets}, replicas ${hpa.replicas} (desired ${hpa.desired}), min ${hpa.minPods}, max ${hpa.maxPods}`]);
    const c = so.conditions;
    facts.push([`Ready ${c.ready.status}, Active ${c.active.status}, Fallback ${c.fallback.status}, Paused ${c.paused.status}`]);
    if (c.ready.status !== 'True') facts.push([`Ready ${c.ready.status} (${c.ready.reason}): ${c.ready.message}`, 'error']);
    for (const t of so.triggers) {
      const name = `trigger ${t.index} (${t.type})`;
      if (t.error !== undefined) facts.push([`${name} cannot be read: ${t.error}${t.failingSince ? ` (since ${clock(t.failingSince)})` : ''}`, 'error']);
      else if (t.value !== undefined) facts.push([`${name}: ${t.value} (${t.describes}); target ${t.target}${t.metricType === 'AverageValue' ? ' per replica' : ''}, activation ${t.activationTarget}`]);
      else facts.push([`${name}: not read yet`]);
    }
    for (const q of status.queues ?? []) if (q.error) facts.push([`queue ${q.queue} (${q.binding}): depth cannot be read: ${q.error}`, 'error']);
    const o = (status.outlook ?? []).find((x) => x.scaledObject === so.name);
    if (o?.backlog) facts.push([o.backlog.text, 'next']);
    if (o?.cooldown) facts.push([o.cooldown.text, 'next']);
    panel.facts.replaceChildren(...facts.map(([text, cls]) => el('li', cls ? { class: cls, text } : { text })));
    if (panel.last) {
      const rate = panel.last.processedPerSecond;
      panel.rateBox.previousElementSibling.textContent = `Messages processed per second: ${rate === null ? 'not measured yet' : Math.round(rate * 100) / 100} (${panel.last.processed} since start)`;
    }
  }
}

function renderDecisions(status) {
  state.decisions = status.decisions ?? [];
  for (const p of state.panels.values()) {
    const mine = p.decisions().slice(-30).reverse();
    p.list.replaceChildren(...mine.map((d) => el('li', { text: `${clock(d.at)}  ${d.kind}  ${d.from} → ${d.to}  ${d.reason}` })));
    if (mine.length === 0) p.list.replaceChildren(el('li', { class: 'none', text: 'no decision yet' }));
    p.chart.redraw(false, false);
  }
}

function renderReplicas(status, logs) {
  const body = $('#replicas tbody');
  const rows = new Map([...body.rows].map((r) => [r.dataset.name, r]));
  const names = new Set();
  for (const r of status.replicas) {
    names.add(r.name);
    let row = rows.get(r.name);
    if (!row) {
      row = el('tr', { 'data-name': r.name });
      for (let i = 0; i < 8; i++) row.append(el(i === 0 ? 'th' : 'td', i === 0 ? { scope: 'row' } : {}));
      const details = el('details', {}, el('summary', { text: 'log' }), el('pre'));
      details.addEventListener('toggle', () => (details.open ? state.openLogs.add(r.name) : state.openLogs.delete(r.name)));
      details.open = state.openLogs.has(r.name);
      row.append(el('td', {}, details));
      body.append(row);
    }
    const cells = [r.name, r.appId, r.ready ? '2/2' : '0/2', r.status, String(r.restarts), age(r.ageSeconds), String(r.inFlight), r.processed === undefined ? '' : String(r.processed)];
    cells.forEach((text, i) => {
      if (row.cells[i].textContent !== text) row.cells[i].textContent = text;
    });
    row.dataset.status = r.status;
    const lines = logs?.replicas?.[r.name] ?? [];
    const pre = row.querySelector('pre');
    const shown = lines.slice(-LOG_LINES_SHOWN).join('\n');
    if (pre.textContent !== shown) pre.textContent = shown || '(no output yet)';
    row.querySelector('summary').textContent = lines.length === 0 ? 'no output yet' : `last ${Math.min(lines.length, LOG_LINES_SHOWN)} lines`;
  }
  for (const [name, row] of rows) if (!names.has(name)) row.remove();
  body.closest('table').dataset.count = String(status.replicas.length);
}

function setStale(reason) {
  const banner = $('#stale');
  if (reason === undefined) {
    state.stale = false;
    banner.hidden = true;
    banner.textContent = '';
    document.body.classList.remove('is-stale');
    return;
  }
  state.stale = true;
  const since = state.freshAt === undefined ? 'the page opened' : clock(state.freshAt);
  banner.textContent = `data is stale since ${since}: ${reason}. The page keeps trying every second.`;
  banner.hidden = false;
  document.body.classList.add('is-stale');
}

async function tick() {
  try {
    const [status, history, logs] = await Promise.all([
      getJson('/status'),
      getJson(`/history?since=${state.lastAt}`),
      getJson('/logs').catch(() => undefined),
    ]);
    state.capacity = history.capacity ?? state.capacity;
    state.latencyWindowMs = history.latencyWindowMs ?? state.latencyWindowMs;
    ingest(history.samples, status);
    renderSystem(status);
    renderScaledObjects(status);
    renderDecisions(status);
    renderReplicas(status, logs);
    const newest = state.lastAt;
    const lag = history.now - newest;
    if (newest > 0 && lag <= STALE_MS) {
      state.freshAt = newest;
      setStale(undefined);
    } else if (newest > 0) {
      setStale(`the newest sample is ${Math.round(lag / 1000)}s old (the supervisor answers, but its readings lag)`);
    }
  } catch (err) {
    setStale(`the supervisor at ${location.host} does not answer (${err instanceof Error ? err.message : String(err)})`);
  } finally {
    setTimeout(tick, POLL_MS);
  }
}

// ---- the produce form -----------------------------------------------------------------------------------------

$('#produce').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const out = $('#produce-result');
  const button = $('#produce button');
  const count = Number($('#produce-count').value);
  const intervalMilliseconds = Number($('#produce-interval').value);
  button.disabled = true;
  out.textContent = `sending ${count}…`;
  try {
    const res = await fetch('/MessageProducer', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ count, intervalMilliseconds }),
    });
    const body = await res.json().catch(() => ({}));
    out.textContent = res.ok
      ? `sent ${body.sent ?? count} message${(body.sent ?? count) === 1 ? '' : 's'} at ${clock(Date.now())}`
      : `not sent: ${res.status} ${body.errorCode ?? ''} ${body.message ?? ''}`.replace(/\s+/g, ' ').trim();
    out.dataset.outcome = res.ok ? 'sent' : 'refused';
  } catch (err) {
    out.textContent = `not sent: the supervisor does not answer (${err instanceof Error ? err.message : String(err)})`;
    out.dataset.outcome = 'failed';
  } finally {
    button.disabled = false;
  }
});

// ---- dead letters: GET /dlq, with requeue and purge (POST /dlq/requeue, /dlq/purge); the panel says when the
// supervisor does not serve it, and what each binding that cannot be read answered ------------------------------

const DLQ_REASON_SHOWN = 160;

async function readDeadLetters() {
  const box = $('#dlq-body');
  const actions = $('#dlq-actions');
  try {
    const res = await fetch('/dlq', { cache: 'no-store', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    if (res.status === 404) {
      box.textContent = 'dead letters: not available';
      actions.hidden = true;
    } else if (!res.ok) {
      box.textContent = `dead letters: cannot be read (GET /dlq answered ${res.status})`;
    } else {
      renderDeadLetters(await res.json());
      actions.hidden = false;
    }
  } catch (err) {
    box.textContent = `dead letters: cannot be read (${err instanceof Error ? err.message : String(err)})`;
  }
}

function renderDeadLetters(listing) {
  const box = $('#dlq-body');
  const bindings = listing.bindings ?? [];
  const letters = bindings.flatMap((b) => b.deadLetters ?? []);
  const notes = el('ul', { class: 'facts' });
  for (const b of bindings) {
    if (b.error) notes.append(el('li', { class: 'error', 'data-binding': b.binding, text: b.error.message }));
    else if (b.more) notes.append(el('li', { text: `binding ${b.binding} (queue ${b.queue}): showing the oldest ${b.deadLetters.length} of ${b.total ?? 'more'}` }));
  }
  if (bindings.length === 0) notes.append(el('li', { text: 'this system has no input binding, so no dead letters' }));
  const parts = [];
  if (letters.length === 0) {
    parts.push(el('p', { class: 'none', text: bindings.some((b) => !b.error) ? 'no dead letters' : '' }));
  } else {
    const body = el('tbody');
    for (const d of letters) {
      const reason = d.reason.length > DLQ_REASON_SHOWN ? `${d.reason.slice(0, DLQ_REASON_SHOWN - 1)}…` : d.reason;
      const when = (iso) => (iso ? new Date(iso).toLocaleString([], { hour12: false }) : '—');
      const requeue = el('button', { type: 'button', class: 'dlq-requeue', text: 'requeue' });
      requeue.addEventListener('click', () => void dlqAction('requeue', { binding: d.binding, ids: [d.id] }, `requeue dead letter ${d.id}`));
      const purge = el('button', { type: 'button', class: 'dlq-purge', text: 'purge' });
      purge.addEventListener('click', () => void dlqAction('purge', { binding: d.binding, ids: [d.id] }, `purge dead letter ${d.id}`));
      const row = el('tr', { 'data-id': d.id, 'data-binding': d.binding },
        el('td', { text: d.binding }),
        el('th', { scope: 'row', text: d.id }),
        el('td', { text: String(d.deliveryCount) }),
        el('td', { text: when(d.enqueuedAt) }),
        el('td', { text: when(d.deadLetteredAt) }),
        el('td', { class: 'dlq-reason', title: d.reason, text: reason }),
        el('td', { class: 'dlq-row-actions' }, requeue, ' ', purge),
      );
      body.append(row);
    }
    const head = el('thead', {}, el('tr', {}, ...['Binding', 'Id', 'Deliveries', 'Enqueued', 'Dead-lettered', 'Reason', ''].map((t) => el('th', { scope: 'col', text: t }))));
    parts.push(el('table', { id: 'dlq-table' }, head, body));
  }
  box.replaceChildren(notes, ...parts);
}

/** POSTs a requeue or purge, says what came of it, and reads the dead letters again. Purge asks first. */
async function dlqAction(action, selection, what) {
  const out = $('#dlq-result');
  if (action === 'purge' && !window.confirm(`${what}? Purged dead letters are deleted for good.`)) return;
  out.textContent = `${what}…`;
  try {
    const res = await fetch(`/dlq/${action}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(selection),
      signal: AbortSignal.timeout(60_000),
    });
    const body = await res.json().catch(() => ({}));
    if (res.ok) {
      const n = body.count ?? 0;
      const failed = (body.bindings ?? []).filter((b) => b.error).map((b) => b.error.message);
      out.textContent = `${action === 'requeue' ? 'requeued' : 'purged'} ${n} dead letter${n === 1 ? '' : 's'} at ${clock(Date.now())}${failed.length > 0 ? `; ${failed.join('; ')}` : ''}`;
      out.dataset.outcome = 'done';
    } else {
      out.textContent = `not done: ${res.status} ${body.errorCode ?? ''} ${body.message ?? ''}`.replace(/\s+/g, ' ').trim();
      out.dataset.outcome = 'refused';
    }
  } catch (err) {
    out.textContent = `not done: the supervisor does not answer (${err instanceof Error ? err.message : String(err)})`;
    out.dataset.outcome = 'failed';
  }
  await readDeadLetters();
}

$('#dlq-requeue-all').addEventListener('click', () => void dlqAction('requeue', { all: true }, 'requeue every dead letter'));
$('#dlq-purge-all').addEventListener('click', () => void dlqAction('purge', { all: true }, 'purge every dead letter'));

async function loadDeadLetters() {
  await readDeadLetters();
  setTimeout(loadDeadLetters, DLQ_EVERY_MS);
}

void tick();
void loadDeadLetters();
