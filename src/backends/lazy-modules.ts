/**
 * qscale's own ES modules, loaded synchronously the first time they are asked for, so that a registry lookup stays
 * synchronous while a process loads only the brokers it uses. Node 20.19 and later require() an ES module; on an
 * older Node every path is imported up front, as before they were lazy.
 */
const canRequireEsm = (process.features as { require_module?: boolean }).require_module === true;

/**
 * A loader of `paths`, which resolve from the caller: it passes its own require (createRequire(import.meta.url)) and
 * import (`(p) => import(p)`).
 */
export async function esModuleLoader<P extends string>(
  require: NodeJS.Require,
  paths: readonly P[],
  importer: (path: P) => Promise<unknown>,
): Promise<(path: P) => unknown> {
  const loaded = new Map<P, unknown>();
  if (!canRequireEsm) for (const p of paths) loaded.set(p, await importer(p));
  return (path) => {
    let m = loaded.get(path);
    if (m === undefined) {
      m = require(path) as unknown;
      loaded.set(path, m);
    }
    return m;
  };
}
