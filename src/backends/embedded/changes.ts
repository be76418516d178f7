/**
 * Tells waiting receivers that the queue file changed, within a few milliseconds and without a busy loop.
 * Writes of this process are announced directly. Writes of other processes are seen through SQLite's
 * `PRAGMA data_version`, which changes when another connection commits (a read of shared memory, ~1 µs).
 * What to poll it on: a timer every few ms costs ~2 % of a core per idle receiver in event-loop wake-ups alone, so
 * the feed watches the `-wal` file instead (every commit appends to it) and polls data_version on each event, plus a
 * few quick re-polls because the event can arrive a moment before the commit is visible. A slow timer backs it up.
 * Where the file cannot be watched, it falls back to the fast timer. bench/embedded-queue.ts prints both costs.
 * The feed runs only while someone waits: a busy receiver has no use for wake-ups, and file events for its own
 * writes would cost it CPU on every message.
 */
import fs from 'node:fs';

export type ChangeListener = () => void;

export interface ChangeFeedOptions {
  /** The file every commit writes to (the WAL). Absent or unwatchable: poll every fastPollMs. */
  watchFile?: string;
  fastPollMs: number;
  /** Backup poll while the file is watched. */
  slowPollMs: number;
}

/** After a file event, re-poll at these delays until the commit shows. */
const REPOLL_MS = [1, 3, 10, 30];

export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();
  private timer: NodeJS.Timeout | undefined;
  private watcher: fs.FSWatcher | undefined;
  private repoll: NodeJS.Timeout | undefined;
  private lastVersion: number | undefined;
  private announced = false;

  constructor(
    private readonly readVersion: () => number,
    private readonly options: ChangeFeedOptions,
  ) {}

  /**
   * baseline: the data_version the subscriber last acted on (read before its last query). A commit since then wakes
   * it at once, so nothing that lands between its query and this call is missed.
   */
  subscribe(listener: ChangeListener, baseline?: number): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.start();
    if (baseline !== undefined && this.safeVersion() !== baseline) queueMicrotask(() => this.listeners.has(listener) && listener());
    return () => {
      if (this.listeners.delete(listener) && this.listeners.size === 0) this.pause();
    };
  }

  version(): number | undefined {
    return this.safeVersion();
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
    this.pause();
    this.listeners.clear();
  }

  private pause(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.repoll) clearTimeout(this.repoll);
    this.watcher?.close();
    this.timer = this.repoll = this.watcher = undefined;
  }

  private start(): void {
    const { watchFile } = this.options;
    if (watchFile) {
      try {
        this.watcher = fs.watch(watchFile, { persistent: false }, () => this.onFileEvent());
        this.watcher.on('error', () => this.fallBackToFastPoll());
      } catch {
        this.watcher = undefined;
      }
    }
    this.timer = setInterval(() => this.poll(), this.watcher ? this.options.slowPollMs : this.options.fastPollMs);
  }

  private fallBackToFastPoll(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.poll(), this.options.fastPollMs);
  }

  private onFileEvent(): void {
    if (this.poll() || this.repoll) return;
    let i = 0;
    const again = (): void => {
      this.repoll = undefined;
      if (this.poll() || i >= REPOLL_MS.length || this.listeners.size === 0) return;
      this.repoll = setTimeout(again, REPOLL_MS[i++]);
    };
    this.repoll = setTimeout(again, REPOLL_MS[i++]);
  }

  /** Returns true when another connection committed since the last look. */
  private poll(): boolean {
    const v = this.safeVersion();
    if (v === undefined || v === this.lastVersion) return false;
    this.lastVersion = v;
    this.emit();
    return true;
  }

  private safeVersion(): number | undefined {
    try {
      return this.readVersion();
    } catch {
      // A busy or closing database: the next look tries again.
      return undefined;
    }
  }

  private emit(): void {
    for (const l of [...this.listeners]) l();
  }
}
