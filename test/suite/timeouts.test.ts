/**
 * The run cannot hang on a test: every test, or a describe around it, and every hook that may wait on something,
 * carries a timeout. (A describe's timeout bounds its tests but not its hooks: node:test runs a hook to its end.)
 * Read from the sources under test/, so a new file without one fails here, naming the file and line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TEST_ROOT = path.resolve(fileURLToPath(new URL('../../../test/', import.meta.url)));
const CALL = /(?<![\w.$])(describe|suite|test|it|before|after|beforeEach|afterEach)(?:\.(?:skip|only|todo))?\s*\(/g;
const HOOKS = new Set(['before', 'after', 'beforeEach', 'afterEach']);

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return testFiles(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}

/**
 * The source with comments blanked and the text of strings, template literals and regular expressions replaced by
 * 'x' (code inside `${...}` kept), same length and lines: brackets and names left are code.
 */
export function codeOnly(src: string): string {
  const out = src.split('');
  const blank = (from: number, to: number): void => {
    for (let k = from; k < to; k++) if (out[k] !== '\n') out[k] = 'x';
  };
  const templates: number[] = []; // brace depth at which each open `${` returns to its template
  let depth = 0;
  let i = 0;
  let prev = ''; // last significant code character, to tell a regular expression from a division
  const inTemplate = (): void => {
    // from i (inside a template's text) to its end or to `${`
    const start = i;
    while (i < src.length && src[i] !== '`' && !(src[i] === '$' && src[i + 1] === '{')) i += src[i] === '\\' ? 2 : 1;
    blank(start, i);
    if (src[i] === '`') {
      i++;
      prev = 'x';
    } else if (i < src.length) {
      templates.push(depth);
      depth++;
      i += 2;
      prev = '{';
    }
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '/' && src[i + 1] === '/') {
      const j = src.indexOf('\n', i);
      blank(i, j === -1 ? src.length : j);
      i = j === -1 ? src.length : j;
    } else if (c === '/' && src[i + 1] === '*') {
      const j = src.indexOf('*/', i + 2);
      const end = j === -1 ? src.length : j + 2;
      blank(i, end);
      i = end;
    } else if (c === '\'' || c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      blank(i + 1, j);
      i = j + 1;
      prev = 'x';
    } else if (c === '`') {
      i++;
      inTemplate();
    } else if (c === '/' && (prev === '' || '(,=:[!&|?{};+-*%<>~^'.includes(prev) || /\breturn\s*$/.test(src.slice(Math.max(0, i - 8), i)))) {
      let j = i + 1;
      let cls = false;
      while (j < src.length && src[j] !== '\n' && (cls || src[j] !== '/')) {
        if (src[j] === '\\') j++;
        else if (src[j] === '[') cls = true;
        else if (src[j] === ']') cls = false;
        j++;
      }
      blank(i + 1, j);
      i = j + 1;
      prev = 'x';
    } else {
      if (c === '{') depth++;
      if (c === '}') {
        depth--;
        if (templates.length > 0 && templates[templates.length - 1] === depth) {
          templates.pop();
          i++;
          inTemplate();
          continue;
        }
      }
      if (!/\s/.test(c)) prev = c;
      i++;
    }
  }
  return out.join('');
}

function closing(code: string, open: number): number {
  let d = 0;
  for (let j = open; j < code.length; j++) {
    const c = code[j]!;
    if (c === '(' || c === '[' || c === '{') d++;
    else if (c === ')' || c === ']' || c === '}') {
      d--;
      if (d === 0) return j;
    }
  }
  return code.length;
}

interface Call { kind: string; open: number; close: number; line: number; own: boolean }

/** The test, suite and hook calls of a file with no timeout bounding them, as "kind at line". */
export function unbounded(src: string): string[] {
  const code = codeOnly(src);
  const calls: Call[] = [];
  for (const m of code.matchAll(CALL)) {
    const open = m.index + m[0].length - 1;
    calls.push({ kind: m[1]!, open, close: closing(code, open), line: src.slice(0, open).split('\n').length, own: false });
  }
  for (const c of calls) {
    // Its own arguments, nested calls left out: a timeout of a test inside a describe is not the describe's.
    const own = code.slice(c.open, c.close).split('');
    for (const n of calls) if (n.open > c.open && n.close <= c.close) for (let k = n.open; k < n.close; k++) own[k - c.open] = ' ';
    c.own = /\btimeout\s*[:,}]/.test(own.join(''));
  }
  return calls
    .filter((c) => {
      if (c.own) return false;
      if (HOOKS.has(c.kind)) {
        // A hook of plain synchronous statements cannot wait on anything.
        const args = code.slice(c.open + 1, c.close).trim();
        return !(/^\(\)\s*=>\s*\{/.test(args) && !/\b(return|await)\b/.test(args));
      }
      return !calls.some((d) => (d.kind === 'describe' || d.kind === 'suite') && d.own && d.open < c.open && c.close <= d.close);
    })
    .map((c) => `${c.kind} at line ${c.line}`);
}

test('suite - the reader of test files sees through strings, templates, regular expressions and comments', { timeout: 10_000 }, () => {
  const src = [
    "const s = 'it(\"x\")'; // test('not a call')",
    'const r = /it\\(/; const t = `${`test(${1})`}`;',
    "describe('d', { timeout: 5 }, () => { it('covered', () => {}); before(async () => { await x; }); });",
    "test('bare', async () => {});",
    "after(() => { rmSync(d); });",
    "test('own', { timeout: 1 }, () => {}); after(cleanup);",
  ].join('\n');
  assert.deepEqual(unbounded(src), ['before at line 3', 'test at line 4', 'after at line 6']);
});

test('suite - every test file bounds every test and every hook that may wait with a timeout', { timeout: 60_000 }, () => {
  const files = testFiles(TEST_ROOT);
  assert.ok(files.length > 20, `test files found under ${TEST_ROOT}`);
  const missing = files.flatMap((f) => unbounded(readFileSync(f, 'utf8')).map((w) => `${path.relative(TEST_ROOT, f)}: ${w}`));
  assert.deepEqual(missing, [], 'add { timeout: ... } to these calls (or to a describe around the tests)');
});
