/**
 * A small structural schema, shaped like the OpenAPI v3 schemas in KEDA's CRDs, so the fields a cluster accepts
 * are declared once: the parsers validate against it and a test compares it with the CRD itself.
 * Unknown fields are errors, as with `kubectl apply` (strict field validation is kubectl's default).
 */
import type { FieldPath, Manifest } from '../components/manifests.js';

export type Schema =
  | { type: 'integer'; minimum?: number; maximum?: number }
  | { type: 'string'; enum?: readonly string[] }
  | { type: 'boolean' }
  /** A Kubernetes quantity: a number or a decimal string ("0.05", "50m"). */
  | { type: 'quantity' }
  | { type: 'object'; properties: Readonly<Record<string, Schema>>; required?: readonly string[] }
  /** A free-form mapping whose values all have one schema (e.g. trigger metadata: strings). */
  | { type: 'map'; values: Schema }
  | { type: 'array'; items: Schema; minItems?: number }
  /** Accepted as it is, not looked into (kinds of configuration qscale does not act on). */
  | { type: 'any' };

const INT32_MAX = 2_147_483_647;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `'${v}'`;
  return String(v);
}

export function dotted(path: FieldPath): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

/** The closest known name, to suggest on a typo ("pollingIntervall" → "pollingInterval"). */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(name.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return bestD <= Math.max(2, Math.floor(name.length / 4)) ? best : undefined;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

/**
 * Checks `value` at `path` of manifest `m` against `schema`; throws the first violation as a ConfigError naming
 * the document, the field and its line. `subject` starts each message ("ScaledObject consumer-scaler").
 */
export function validate(m: Manifest, subject: string, value: unknown, schema: Schema, path: FieldPath): void {
  const fail = (msg: string, at: FieldPath = path): never => {
    throw m.error(`${subject}: ${msg}`, at);
  };
  const name = dotted(path);
  switch (schema.type) {
    case 'any':
      return;
    case 'integer': {
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        fail(`${name} must be an integer, got ${describe(value)}${typeof value === 'string' && /^-?\d+$/.test(value) ? ' (write it without quotes)' : ''}`);
      }
      const n = value as number;
      if (n > INT32_MAX || n < -INT32_MAX - 1) fail(`${name} is out of range for a 32-bit integer: ${n}`);
      if (schema.minimum !== undefined && n < schema.minimum) fail(`${name} must be at least ${schema.minimum}, got ${n}`);
      if (schema.maximum !== undefined && n > schema.maximum) fail(`${name} must be at most ${schema.maximum}, got ${n}`);
      return;
    }
    case 'string':
      if (typeof value !== 'string') {
        fail(`${name} must be a string, got ${describe(value)}${typeof value === 'number' || typeof value === 'boolean' ? ` (quote it: '${String(value)}')` : ''}`);
      }
      if (schema.enum && !schema.enum.includes(value as string)) {
        fail(`${name} must be one of ${schema.enum.map((e) => `'${e}'`).join(', ')}, got ${describe(value)}`);
      }
      return;
    case 'boolean':
      if (typeof value !== 'boolean') fail(`${name} must be true or false, got ${describe(value)}`);
      return;
    case 'quantity':
      if (!(typeof value === 'number' || (typeof value === 'string' && parseQuantity(value) !== undefined))) {
        fail(`${name} must be a number such as 0.1 or 100m, got ${describe(value)}`);
      }
      return;
    case 'array':
      if (!Array.isArray(value)) fail(`${name} must be a list, got ${describe(value)}`);
      if (schema.minItems !== undefined && (value as unknown[]).length < schema.minItems) {
        fail(`${name} must have at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}`);
      }
      (value as unknown[]).forEach((item, i) => validate(m, subject, item, schema.items, [...path, i]));
      return;
    case 'map':
      if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(`${name} must be a mapping, got ${describe(value)}`);
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) validate(m, subject, v, schema.values, [...path, k]);
      return;
    case 'object': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(`${name} must be a mapping, got ${describe(value)}`);
      const obj = value as Record<string, unknown>;
      const known = Object.keys(schema.properties);
      for (const req of schema.required ?? []) {
        if (obj[req] === undefined || obj[req] === null) fail(`missing required field ${dotted([...path, req])}`);
      }
      for (const [k, v] of Object.entries(obj)) {
        const sub = schema.properties[k];
        if (!sub) {
          const hint = closest(k, known);
          fail(`unknown field ${dotted([...path, k])}${hint ? ` (did you mean '${hint}'?)` : ''}`, [...path, k]);
        }
        // YAML `key:` with no value is null; the API server treats it as absent.
        if (v === null) continue;
        validate(m, subject, v, sub!, [...path, k]);
      }
      return;
    }
  }
}

/** A Kubernetes quantity as a number: "0.1", "100m" (milli), "1", 2. Undefined when not one. */
export function parseQuantity(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(m|k|M|G|Ki|Mi|Gi)?$/.exec(v.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const scale: Record<string, number> = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
  return m[2] ? n * scale[m[2]]! : n;
}
