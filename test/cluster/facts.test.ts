/**
 * The Dapr component facts qscale ships (src/cluster/dapr-components.ts) against components-contrib's metadata.yaml
 * files in ../shared/reference: the same field names, the same required flags, the same allowed values, the same
 * authentication profiles. Skipped, visibly, where the reference folder is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { DAPR_COMPONENTS, findDaprComponent, type DaprField } from '../../src/cluster/dapr-components.js';
import { REF } from '../support/crd.js';

interface RefField {
  name: string;
  required?: boolean;
  allowedValues?: string[];
}
interface RefFile {
  type: string;
  name: string;
  version: string;
  binding?: { input?: boolean; output?: boolean };
  metadata?: RefField[];
  authenticationProfiles?: Array<{ title: string; metadata?: RefField[] }>;
  builtinAuthenticationProfiles?: Array<{ name: string; metadata?: RefField[] }>;
}

const ref = REF;
const dirs = ref ? ['dapr-bindings', 'dapr-pubsub'].map((d) => path.join(ref, d)).filter((d) => existsSync(d)) : [];
const skip = dirs.length === 2 ? false : 'reference metadata (../shared/reference/dapr-bindings, dapr-pubsub) not found';
if (skip) console.log(`# component facts cross-check skipped: ${skip}`);

function refs(): Array<{ file: string; doc: RefFile }> {
  return dirs.flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.metadata.yaml')).map((f) => ({ file: f, doc: parse(readFileSync(path.join(d, f), 'utf8')) as RefFile })));
}

const norm = (fs: readonly (RefField | DaprField)[]) =>
  fs.map((f) => `${f.name}${f.required ? '!' : ''}${'allowed' in f && f.allowed ? `=${f.allowed.join('|')}` : ''}${'allowedValues' in f && f.allowedValues ? `=${f.allowedValues.join('|')}` : ''}`).sort();

/** Types qscale carries no facts for: Dapr has them, qscale neither serves them nor points to them. */
const NOT_CARRIED = ['bindings.aws.sqs', 'bindings.azure.storagequeues', 'bindings.kafka', 'bindings.mqtt3', 'bindings.postgres', 'bindings.redis'];

test('facts - every reference component qscale serves or points to is carried, under the type daprd registers', { timeout: 60_000, skip }, () => {
  for (const { file, doc } of refs()) {
    const type = `${doc.type}.${doc.name}`;
    if (NOT_CARRIED.includes(type)) continue;
    const facts = findDaprComponent(type);
    assert.ok(facts, `${file}: ${type} is not carried`);
    assert.ok(facts.versions.includes(doc.version), `${file}: version ${doc.version}`);
    if (doc.binding) {
      assert.equal(facts.input ?? false, doc.binding.input ?? false, `${file}: input`);
      assert.equal(facts.output ?? false, doc.binding.output ?? false, `${file}: output`);
    }
  }
  assert.ok(findDaprComponent('bindings.azure.servicebusqueues'), 'the seed type');
});

test('facts - field names, required flags and allowed values agree with each metadata.yaml', { timeout: 60_000, skip }, () => {
  let compared = 0;
  for (const { file, doc } of refs()) {
    const facts = findDaprComponent(`${doc.type}.${doc.name}`);
    if (!facts) continue;
    compared++;
    assert.deepEqual(norm(facts.fields), norm(doc.metadata ?? []), `${file}: metadata`);
    // Authentication profiles in order: the component's own, then its built-in ones (whose component fields are
    // declared here; the fields every Azure AD profile shares come from components-contrib's .build-tools).
    const own = doc.authenticationProfiles ?? [];
    const builtin = doc.builtinAuthenticationProfiles ?? [];
    assert.equal(facts.profiles.length, own.length + builtin.length, `${file}: number of profiles`);
    own.forEach((p, i) => assert.deepEqual(norm(facts.profiles[i]!.fields), norm(p.metadata ?? []), `${file}: profile ${p.title}`));
    builtin.forEach((p, i) => {
      const mine = norm(facts.profiles[own.length + i]!.fields);
      for (const f of norm(p.metadata ?? [])) assert.ok(mine.includes(f), `${file}: built-in profile ${p.name} field ${f}`);
    });
  }
  assert.equal(compared, DAPR_COMPONENTS.length, 'every carried type has its reference file');
});
