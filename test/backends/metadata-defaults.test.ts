/**
 * A declared default must mean exactly what the same text means when a user writes it: every backend's (and every
 * trigger's) declared metadata is walked, and each default is parsed both ways.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { defineMetadata, type FieldSpec, type MetadataSpec } from '../../src/components/metadata.js';
import { backendDefinitions } from '../../src/backends/registry.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const distBackends = path.resolve(here, '../../src/backends');

/** A component spec (a trigger's KEDA-style spec reads a ResolvedTrigger: test/backends/trigger-metadata.test.ts). */
function isSpec(v: unknown): v is MetadataSpec {
  const s = v as Partial<MetadataSpec> | null;
  return !!s && Array.isArray(s.fields) && typeof s.parse === 'function' && !('writtenAs' in s);
}

/** Every registered binding's spec, plus every spec a backend module exports (its triggers'), by a readable name. */
async function allSpecs(): Promise<Map<MetadataSpec, string>> {
  const specs = new Map<MetadataSpec, string>();
  for (const d of backendDefinitions) specs.set(d.metadata, d.types.join(', '));
  const walk = async (dir: string): Promise<void> => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name === 'index.js') {
        const mod = (await import(pathToFileURL(p).href)) as Record<string, unknown>;
        for (const [name, v] of Object.entries(mod)) {
          if (isSpec(v) && !specs.has(v)) specs.set(v, `${path.relative(distBackends, dir)}: ${name}`);
        }
      }
    }
  };
  await walk(distBackends);
  return specs;
}

/** A value the field's parser takes, for required fields the parse needs. */
function sample(f: FieldSpec): string {
  if (f.enum) return f.enum[0] ?? 'x';
  switch (f.type) {
    case 'boolean': return 'true';
    case 'duration': return '1s';
    case 'number':
    case 'integer': return String(f.min ?? 1);
    default: return 'x';
  }
}

const EXPECTED_TYPE: Record<FieldSpec['type'], string> = {
  string: 'string', boolean: 'boolean', number: 'number', integer: 'number', duration: 'number',
};

const ctx = { subject: 'test', where: () => ({}) };

test('metadata defaults - every declared default of every backend and trigger parses like the same explicit value', { timeout: 30_000 }, async () => {
  const specs = await allSpecs();
  assert.ok(backendDefinitions.length >= 6 && specs.size >= backendDefinitions.length, `walked ${specs.size} specs`);
  const problems: string[] = [];
  let checked = 0;
  for (const [spec, name] of specs) {
    const required: Record<string, string> = {};
    for (const f of spec.fields) if (f.required) required[f.name] = sample(f);
    const implicit = spec.parse(required, ctx) as Record<string, unknown>;
    for (const f of spec.fields) {
      if (f.default === undefined) continue;
      checked += 1;
      const explicit = (spec.parse({ ...required, [f.name]: String(f.default) }, ctx) as Record<string, unknown>)[f.name];
      const got = implicit[f.name];
      if (!Object.is(got, explicit) && JSON.stringify(got) !== JSON.stringify(explicit)) {
        problems.push(`${name}: '${f.name}' default ${JSON.stringify(f.default)} parses to ${JSON.stringify(got)}, explicitly to ${JSON.stringify(explicit)}`);
      }
      if (typeof got !== EXPECTED_TYPE[f.type] || (typeof got === 'number' && !Number.isFinite(got))) {
        problems.push(`${name}: '${f.name}' (${f.type}) default parses to ${typeof got} ${JSON.stringify(got)}`);
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(checked > 40, `checked ${checked} defaults`);
});

test('metadata defaults - duration defaults read as milliseconds where the backends use them', { timeout: 10_000 }, async () => {
  const specs = [...(await allSpecs()).entries()];
  const field = (specName: RegExp, fieldName: string): unknown => {
    const entry = specs.find(([, n]) => specName.test(n) && !/trigger/i.test(n));
    assert.ok(entry, `spec ${specName}`);
    const [spec] = entry;
    const required: Record<string, string> = {};
    for (const f of spec.fields) if (f.required) required[f.name] = sample(f);
    return (spec.parse(required, ctx) as Record<string, unknown>)[fieldName];
  };
  assert.equal(field(/^bindings\.qscale\.postgresql$/, 'pollInterval'), 1000);
  assert.equal(field(/^bindings\.qscale\.nats-jetstream$/, 'ackWait'), 60_000);
  for (const type of backendDefinitions.map((d) => d.types[0] ?? '')) {
    assert.equal(field(new RegExp(`^${type.replace(/\./g, '\\.')}$`), 'retryBackoff'), 1000, `${type} retryBackoff`);
    assert.equal(field(new RegExp(`^${type.replace(/\./g, '\\.')}$`), 'retryBackoffMax'), 30_000, `${type} retryBackoffMax`);
  }
});

test('metadata defaults - a default its own parser refuses is a declaration error, found when the module loads', { timeout: 10_000 }, () => {
  assert.throws(() => defineMetadata([{ name: 'pollInterval', type: 'duration', default: 100, description: '' }] as const),
    /metadata field 'pollInterval': a duration default must be a string with its unit, such as '1s'/);
  assert.throws(() => defineMetadata([{ name: 'pollInterval', type: 'duration', default: 'soon', description: '' }] as const),
    /declared default of 'pollInterval': metadata 'pollInterval' must be a duration such as 5s/);
  assert.throws(() => defineMetadata([{ name: 'count', type: 'integer', default: '1.5', description: '' }] as const),
    /declared default of 'count': metadata 'count' must be an integer, got '1.5'/);
  assert.throws(() => defineMetadata([{ name: 'mode', type: 'string', enum: ['a', 'b'], default: 'c', description: '' }] as const),
    /metadata 'mode' must be one of a, b, got 'c'/);
});
