/**
 * Tells waiting receivers that the queue file changed, without a busy loop and within a few milliseconds.
 * Writes of this process are announced directly. Writes of other processes are seen through SQLite's
 * `PRAGMA data_version`, which changes when another connection commits: reading it only looks at the WAL index in
 * shared memory, so polling it every few milliseconds while someone waits costs next to nothing (bench/embedded-queue.ts
 * prints the idle CPU). Nobody waiting, no timer.
 */
export type ChangeListener = () => void;

export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();
  private timer: NodeJS.Timeout | undefined;
  private lastVersion: number | undefined;
  private announced = false;

  constructor(
    private readonly readVersion: () => number,
    private readonly pollMs: number,
  ) {}

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    if (!this.timer) {
      this.lastVersion = this.safeVersion();
      this.timer = setInterval(() => this.poll(), this.pollMs);
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  /** A write of this process: coalesced so a burst of sends wakes each listener once. */
  announce(): void {
    if (this.announced || this.listeners.size === 0) return;
    this.announced = true;
    queueMicrotask(() => {
      this.announced = false;
      this.emit();
    });
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  private poll(): void {
    const v = this.safeVersion();
    if (v !== undefined && v !== this.lastVersion) {
      this.lastVersion = v;
      this.emit();
    }
  }

  private safeVersion(): number | undefined {
    try {
      return this.readVersion();
    } catch {
      // A busy or closing database: the next tick tries again.
      return undefined;
    }
  }

  private emit(): void {
    for (const l of [...this.listeners]) l();
  }
}
