/**
 * The kubelet's CrashLoopBackOff as a pure step. The kubelet keeps one back-off entry per container
 * (client-go flowcontrol.Backoff with base 10 s and cap MaxContainerBackOff = 300 s): a container that exits with no
 * entry, or whose entry was last updated more than twice the cap ago (it ran 10 minutes), restarts at once and the
 * entry starts at the base; otherwise the restart waits the entry's delay (counted from the exit) and the delay
 * doubles up to the cap.
 */

/** The kubelet's base back-off period (pkg/kubelet backOffPeriod). */
export const CRASH_BACKOFF_BASE_MS = 10_000;
/** The kubelet's MaxContainerBackOff, as a multiple of the base so a shortened base keeps the same shape. */
export const CRASH_BACKOFF_CAP_FACTOR = 30;

export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

/** The back-off entry of one replica: undefined until its first restart. */
export interface BackoffEntry {
  delayMs: number;
  /** When the entry was last advanced: the start of the pair that has now crashed. */
  updatedAt: number;
}

export interface RestartPlan {
  /** How long to wait before starting the pair again (0: at once). */
  waitMs: number;
  /** The entry to keep once the restart happens. */
  entry: BackoffEntry;
}

/** The policy with a base (the kubelet's 10 s unless shortened for tests); the cap keeps the kubelet's 30× ratio. */
export function crashBackoffPolicy(baseMs: number = CRASH_BACKOFF_BASE_MS): BackoffPolicy {
  const base = Number.isFinite(baseMs) && baseMs > 0 ? baseMs : CRASH_BACKOFF_BASE_MS;
  return { baseMs: base, capMs: base * CRASH_BACKOFF_CAP_FACTOR };
}

/**
 * A pair exited at `exitedAt`; the next one may start at `now` or later. Returns the wait and the entry that holds
 * once the restart happens (its `updatedAt` is the planned restart time).
 */
export function planRestart(entry: BackoffEntry | undefined, exitedAt: number, now: number, policy: BackoffPolicy): RestartPlan {
  const stable = entry === undefined || exitedAt - entry.updatedAt > 2 * policy.capMs;
  if (stable) return { waitMs: 0, entry: { delayMs: policy.baseMs, updatedAt: now } };
  const waitMs = Math.max(0, entry.delayMs - (now - exitedAt));
  return { waitMs, entry: { delayMs: Math.min(entry.delayMs * 2, policy.capMs), updatedAt: now + waitMs } };
}

/** The base the supervisor uses: an explicit option, else QSCALE_CRASH_BACKOFF_MS, else the kubelet's. */
export function crashBackoffBase(option: number | undefined, env: NodeJS.ProcessEnv = process.env): number {
  if (option !== undefined && Number.isFinite(option) && option > 0) return option;
  const fromEnv = Number(env.QSCALE_CRASH_BACKOFF_MS);
  if (env.QSCALE_CRASH_BACKOFF_MS !== undefined && Number.isFinite(fromEnv) && fromEnv > 0) return fromEnv;
  return CRASH_BACKOFF_BASE_MS;
}
