/**
 * Metadata declared once per binding / trigger: name, type, default, required, sensitive, description, direction.
 * Parsing, error messages, redaction in logs and the generated docs all come from the declaration.
 */
import { ConfigError } from '../errors.js';
import { redactMetadata } from './redact.js';

export type FieldType = 'string' | 'number' | 'integer' | 'boolean' | 'duration';

export interface FieldSpec {
  name: string;
  type: FieldType;
  description: string;
  /**
   * Parsed exactly like a value the user gives (a duration default is a string such as '1s' and becomes
   * milliseconds; 10 and '10' are the same integer). A default the field's own parser rejects is a declaration bug:
   * defineMetadata throws at once.
   */
  default?: string | number | boolean;
  required?: boolean;
  /** Secrets (connection strings, passwords): never printed. */
  sensitive?: boolean;
  /** Only meaningful for this direction of the binding. */
  binding?: 'input' | 'output';
  enum?: readonly string[];
  /** Other accepted names (legacy spellings). Lookup is case-insensitive, as Dapr's is. */
  aliases?: readonly string[];
  /** Inclusive bounds for numbers. */
  min?: number;
  max?: number;
}

/** Where a component's or trigger's metadata lives, for error messages. */
export interface MetadataContext {
  /** "component message-queue (bindings.rabbitmq)" or "trigger 0 (rabbitmq) of ScaledObject x" */
  subject: string;
  /** file:line of a given metadata field (or of the owning document when the field is absent). */
  where(field?: string): { file?: string; line?: number };
}

type ValueOf<F extends FieldSpec> = F['type'] extends 'boolean'
  ? boolean
  : F['type'] extends 'string'
    ? string
    : number;

type Present<F extends FieldSpec> = F extends { required: true } ? true : F extends { default: unknown } ? true : false;

export type ParsedMetadata<Fs extends readonly FieldSpec[]> = {
  [F in Fs[number] as F['name']]: Present<F> extends true ? ValueOf<F> : ValueOf<F> | undefined;
};

export interface MetadataSpec<Fs extends readonly FieldSpec[] = readonly FieldSpec[]> {
  fields: Fs;
  parse(raw: Readonly<Record<string, string>>, ctx: MetadataContext): ParsedMetadata<Fs>;
  /** A copy safe to log: sensitive values replaced by '***' (components/redact.ts). */
  redact(raw: Readonly<Record<string, string>>): Record<string, string>;
}

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/** Go-style durations ("5s", "1m30s", "250ms") or a bare number of seconds. Returns milliseconds. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  const simple = DURATION_RE.exec(t);
  if (simple) {
    const n = Number(simple[1]);
    return n * unitMs(simple[2] ?? 's');
  }
  let total = 0;
  let consumed = 0;
  for (const m of t.matchAll(DURATION_PART)) {
    total += Number(m[1]) * unitMs(m[2] ?? 's');
    consumed += m[0].length;
  }
  return consumed === t.length && consumed > 0 ? total : undefined;
}

function unitMs(unit: string): number {
  switch (unit) {
    case 'ms': return 1;
    case 's': return 1000;
    case 'm': return 60_000;
    case 'h': return 3_600_000;
    default: return 1000;
  }
}

export function defineMetadata<const Fs extends readonly FieldSpec[]>(fields: Fs): MetadataSpec<Fs> {
  const byLower = new Map<string, FieldSpec>();
  const defaults = new Map<string, unknown>();
  for (const f of fields) {
    byLower.set(f.name.toLowerCase(), f);
    for (const a of f.aliases ?? []) byLower.set(a.toLowerCase(), f);
    if (f.default !== undefined) defaults.set(f.name, parseDefault(f));
  }
  return {
    fields,
    parse(raw, ctx) {
      const out: Record<string, unknown> = {};
      const given = new Map<string, { key: string; value: string }>();
      for (const [key, value] of Object.entries(raw)) {
        const spec = byLower.get(key.toLowerCase());
        if (spec) given.set(spec.name, { key, value });
      }
      for (const f of fields) {
        const g = given.get(f.name);
        if (g === undefined || g.value === '') {
          if (f.required) {
            throw new ConfigError(`${ctx.subject}: missing required metadata '${f.name}'`, { ...ctx.where(), field: f.name });
          }
          out[f.name] = defaults.get(f.name);
          continue;
        }
        out[f.name] = convert(f, g, ctx);
      }
      return out as ParsedMetadata<Fs>;
    },
    redact(raw) {
      return redactMetadata(fields, raw);
    },
  };
}

/** A default goes through the field's parser, as the same text given by the user would. */
function parseDefault(f: FieldSpec): unknown {
  if (f.type === 'duration' && typeof f.default !== 'string') {
    // A bare number would read as seconds, which is never what a declaration of 100 or 10_000 meant.
    throw new Error(`metadata field '${f.name}': a duration default must be a string with its unit, such as '1s' or '250ms'`);
  }
  const declaration: MetadataContext = { subject: `declared default of '${f.name}'`, where: () => ({}) };
  return convert(f, { key: f.name, value: String(f.default) }, declaration);
}

function convert(f: FieldSpec, g: { key: string; value: string }, ctx: MetadataContext): unknown {
  const bad = (expected: string): ConfigError => {
    const shown = f.sensitive ? '(redacted)' : `'${g.value}'`;
    return new ConfigError(`${ctx.subject}: metadata '${g.key}' must be ${expected}, got ${shown}`, {
      ...ctx.where(g.key),
      field: g.key,
    });
  };
  const v = g.value.trim();
  switch (f.type) {
    case 'string': {
      if (f.enum && !f.enum.some((e) => e.toLowerCase() === v.toLowerCase())) {
        throw bad(`one of ${f.enum.join(', ')}`);
      }
      return f.enum ? f.enum.find((e) => e.toLowerCase() === v.toLowerCase()) : g.value;
    }
    case 'boolean': {
      const l = v.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(l)) return true;
      if (['false', '0', 'no', 'off'].includes(l)) return false;
      throw bad('a boolean (true or false)');
    }
    case 'number':
    case 'integer': {
      const n = Number(v);
      if (v === '' || !Number.isFinite(n)) throw bad(f.type === 'integer' ? 'an integer' : 'a number');
      if (f.type === 'integer' && !Number.isInteger(n)) throw bad('an integer');
      if (f.min !== undefined && n < f.min) throw bad(`>= ${f.min}`);
      if (f.max !== undefined && n > f.max) throw bad(`<= ${f.max}`);
      return n;
    }
    case 'duration': {
      const ms = parseDuration(v);
      if (ms === undefined) throw bad('a duration such as 5s, 250ms or 1m30s');
      return ms;
    }
  }
}
