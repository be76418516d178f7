/**
 * A trigger's metadata read the way KEDA reads it (pkg/scalers/scalersconfig/typed_config.go), declared once per
 * trigger: each parameter has KEDA's name (and other names), its type, where KEDA looks for it and in which order
 * (the trigger's metadata, the TriggerAuthentication's parameters, `<name>FromEnv`), its default and its enum.
 *
 * KEDA's rules, kept here for every trigger:
 * - names are matched as written (case-sensitively); a value is trimmed, and an empty value counts as not given;
 * - whole numbers and numbers are JSON numbers (`5`, `2.5`, `1e3` — not `+5`, `.5`, `0x10`, `5.0` for a whole one);
 * - booleans are Go's strconv.ParseBool: 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False — never yes/no/on/off;
 * - durations are Go durations (`30s`, `1m30s`, `250ms`) or a whole number of milliseconds, never negative;
 * - enums compare as written.
 * Where KEDA silently ignores what the user evidently meant — a name that differs only in case, or a parameter written
 * where KEDA does not read it (a password in the metadata that KEDA reads from a TriggerAuthentication only) — qscale
 * refuses it with the way out, since on a cluster it would quietly not apply.
 */
import { ConfigError } from '../errors.js';
import type { ResolvedTrigger } from '../autoscaler/scaler.js';

export type TriggerSource = 'triggerMetadata' | 'authParams' | 'resolvedEnv';
export type TriggerFieldType = 'string' | 'int' | 'float' | 'bool' | 'duration';

export interface TriggerField {
  /** KEDA's name for it. */
  name: string;
  /** KEDA's other names (`name=address;addresses`): tried after `name`, in order. */
  aliases?: readonly string[];
  type: TriggerFieldType;
  /** Where KEDA reads it, in its order. Default: the trigger's metadata only. */
  from?: readonly TriggerSource[];
  /** Used when not given; parsed like a value the user writes. */
  default?: string;
  /** KEDA's "missing required parameter" when not given (and no default). */
  required?: boolean;
  /** The values allowed, compared as written. */
  enum?: readonly string[];
  /** Never printed. */
  sensitive?: boolean;
  /** Not KEDA's: a qscale extension, said so in the docs. */
  extension?: boolean;
  description: string;
}

type ValueOf<F extends TriggerField> = F['type'] extends 'bool' ? boolean : F['type'] extends 'string' ? string : number;
type Present<F extends TriggerField> = F extends { required: true } ? true : F extends { default: string } ? true : false;

export type ParsedTrigger<Fs extends readonly TriggerField[]> = {
  [F in Fs[number] as F['name']]: Present<F> extends true ? ValueOf<F> : ValueOf<F> | undefined;
};

export interface TriggerMetadataSpec<Fs extends readonly TriggerField[] = readonly TriggerField[]> {
  fields: Fs;
  /** Reads the trigger's parameters; throws ConfigError naming the trigger, file:line and the parameter. */
  parse(trigger: ResolvedTrigger): ParsedTrigger<Fs>;
  /** The key the user wrote for a parameter (e.g. `hostFromEnv`), or undefined when it came from elsewhere or not at all. */
  writtenAs(trigger: ResolvedTrigger, name: string): string | undefined;
}

const DEFAULT_FROM: readonly TriggerSource[] = ['triggerMetadata'];
const GO_TRUE = ['1', 't', 'T', 'TRUE', 'true', 'True'];
const GO_FALSE = ['0', 'f', 'F', 'FALSE', 'false', 'False'];
const JSON_INT = /^-?(?:0|[1-9]\d*)$/;
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const INT64_MAX = 9223372036854775807n;

/** Go's strconv.ParseBool; undefined when Go refuses the text. */
export function parseGoBool(text: string): boolean | undefined {
  if (GO_TRUE.includes(text)) return true;
  if (GO_FALSE.includes(text)) return false;
  return undefined;
}

const DURATION_UNITS_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const GO_DURATION = /^[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const GO_DURATION_PART = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

/** Go's time.ParseDuration, in milliseconds; undefined when Go refuses the text. */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0' || text === '+0' || text === '-0') return 0;
  if (!GO_DURATION.test(text)) return undefined;
  let ms = 0;
  for (const m of text.matchAll(GO_DURATION_PART)) ms += Number(m[1]) * (DURATION_UNITS_MS[m[2] as string] ?? 0);
  return text.startsWith('-') ? -ms : ms;
}

/** KEDA's duration parameters: a Go duration, else a whole number of milliseconds; never negative. */
export function parseKedaDuration(text: string): number | 'negative' | undefined {
  let ms = parseGoDuration(text);
  if (ms === undefined && /^[+-]?\d+$/.test(text)) ms = Number(text);
  if (ms === undefined) return undefined;
  return ms < 0 ? 'negative' : ms;
}

function within64Bits(text: string): boolean {
  const n = BigInt(text);
  return n <= INT64_MAX && n >= -INT64_MAX - 1n;
}

function sourcesOf(trigger: ResolvedTrigger): Record<TriggerSource, Readonly<Record<string, string>>> {
  const s = trigger.sources;
  if (s) return s;
  // Built by hand (tests, the simulator): every parameter sits in `metadata`, wherever it came from.
  return { triggerMetadata: trigger.metadata, authParams: trigger.metadata, resolvedEnv: trigger.metadata };
}

function describeSources(f: TriggerField): string {
  const from = f.from ?? DEFAULT_FROM;
  const parts: string[] = [];
  if (from.includes('triggerMetadata')) parts.push(`metadata '${f.name}'`);
  if (from.includes('authParams')) parts.push(`a TriggerAuthentication parameter '${f.name}'`);
  if (from.includes('resolvedEnv')) parts.push(`'${f.name}FromEnv'`);
  return parts.join(' or ');
}

export function defineTriggerMetadata<const Fs extends readonly TriggerField[]>(fields: Fs): TriggerMetadataSpec<Fs> {
  const byName = new Map<string, TriggerField>();
  const byLower = new Map<string, string>();
  for (const f of fields) {
    for (const n of [f.name, ...(f.aliases ?? [])]) {
      byName.set(n, f);
      byLower.set(n.toLowerCase(), n);
    }
  }

  const find = (trigger: ResolvedTrigger, f: TriggerField): { value: string; key: string; source: TriggerSource } | undefined => {
    const src = sourcesOf(trigger);
    for (const source of f.from ?? DEFAULT_FROM) {
      for (const n of [f.name, ...(f.aliases ?? [])]) {
        const v = src[source][n]?.trim();
        if (v !== undefined && v !== '') return { value: v, key: source === 'resolvedEnv' && trigger.sources ? `${n}FromEnv` : n, source };
      }
    }
    return undefined;
  };

  /** Keys of the trigger's own metadata that KEDA would not read where they are written. */
  const checkPlacement = (trigger: ResolvedTrigger): void => {
    const written = trigger.sources ? trigger.sources.triggerMetadata : trigger.metadata;
    for (const key of Object.keys(written)) {
      const fromEnv = trigger.sources !== undefined && key.endsWith('FromEnv') && key.length > 'FromEnv'.length;
      const param = fromEnv ? key.slice(0, -'FromEnv'.length) : key;
      const f = byName.get(param);
      const where = { ...trigger.where(key), field: key };
      if (!f) {
        const exact = byLower.get(param.toLowerCase());
        if (exact !== undefined) {
          throw new ConfigError(
            `${trigger.subject}: metadata '${key}' is not read: KEDA matches parameter names as written, so it would ignore it; write '${exact}${fromEnv ? 'FromEnv' : ''}'`,
            where,
          );
        }
        continue;
      }
      if (!trigger.sources) continue;
      const from = f.from ?? DEFAULT_FROM;
      if (fromEnv ? !from.includes('resolvedEnv') : !from.includes('triggerMetadata')) {
        throw new ConfigError(
          `${trigger.subject}: metadata '${key}' is not read: KEDA ignores it there and reads ${f.name} from ${describeSources(f)} only`,
          where,
        );
      }
    }
  };

  const convert = (trigger: ResolvedTrigger, f: TriggerField, given: { value: string; key: string }): unknown => {
    const v = given.value;
    const shown = f.sensitive || trigger.sensitive?.includes(f.name) ? '(value redacted)' : `'${v}'`;
    const bad = (expected: string): ConfigError =>
      new ConfigError(`${trigger.subject}: metadata '${given.key}' must be ${expected}, got ${shown}`, {
        ...trigger.where(given.key.replace(/FromEnv$/, '')),
        field: given.key,
      });
    if (f.enum && !f.enum.includes(v)) throw bad(`one of ${f.enum.join(', ')} (as written)`);
    switch (f.type) {
      case 'string':
        return v;
      case 'bool': {
        const b = parseGoBool(v);
        if (b === undefined) throw bad('true or false (KEDA reads it with Go\'s ParseBool: 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False)');
        return b;
      }
      case 'int':
        if (!JSON_INT.test(v) || !within64Bits(v)) throw bad('a whole number such as 5');
        return Number(v);
      case 'float': {
        const n = Number(v);
        if (!JSON_NUMBER.test(v) || !Number.isFinite(n)) throw bad('a number such as 5 or 2.5');
        return n;
      }
      case 'duration': {
        const ms = parseKedaDuration(v);
        if (ms === 'negative') throw bad('a duration that is not negative');
        if (ms === undefined) throw bad("a duration such as '30s' or '500ms', or a whole number of milliseconds");
        return ms;
      }
    }
  };

  for (const f of fields) {
    if (f.default === undefined) continue;
    const declared: ResolvedTrigger = { index: 0, type: '', metricType: 'AverageValue', metadata: {}, subject: `declared default of '${f.name}'`, where: () => ({}) };
    convert(declared, f, { value: f.default, key: f.name }); // a default its own parser refuses is a declaration bug
  }

  return {
    fields,
    parse(trigger) {
      checkPlacement(trigger);
      const out: Record<string, unknown> = {};
      for (const f of fields) {
        const given = find(trigger, f);
        if (given === undefined) {
          if (f.default !== undefined) out[f.name] = convert(trigger, f, { value: f.default, key: f.name });
          else if (f.required) {
            throw new ConfigError(`${trigger.subject}: missing required metadata '${f.name}' (give ${describeSources(f)})`, {
              ...trigger.where(),
              field: f.name,
            });
          } else out[f.name] = undefined;
          continue;
        }
        out[f.name] = convert(trigger, f, given);
      }
      return out as ParsedTrigger<Fs>;
    },
    writtenAs(trigger, name) {
      const f = byName.get(name);
      if (!f) return undefined;
      const g = find(trigger, f);
      return g && g.source !== 'authParams' ? g.key : undefined;
    },
  };
}

/** A ConfigError about one parameter of `trigger`, at the line the user wrote it (or the trigger's). */
export function triggerError(trigger: ResolvedTrigger, message: string, field?: string): ConfigError {
  return new ConfigError(`${trigger.subject}: ${message}`, { ...trigger.where(field), ...(field ? { field } : {}) });
}

/**
 * The HPA the trigger becomes refuses a target that is not above 0 (the API server validates `averageValue` and
 * `value` as positive), so KEDA's scale loop never runs with one: refused at load.
 */
export function positiveTarget(trigger: ResolvedTrigger, value: number, field: string): number {
  if (!(value > 0)) {
    throw triggerError(trigger, `${field} must be more than 0, got ${value} (the HorizontalPodAutoscaler refuses a target that is not positive)`, field);
  }
  return value;
}
