/**
 * What a binding whose broker went away prints: one line when it starts failing, one when the cause changes, one
 * when it works again — never one per retry or per call. The current outage is also what health and metadata show.
 */
import { errorMessage } from '../errors.js';
import type { ResolvedComponent } from '../backends/types.js';
import { redactSecrets } from './redact.js';

export type OutageLevel = 'error' | 'warn' | 'info';

export interface OutageText {
  /** The first failure: names the component, its type, the cause and what happens meanwhile. */
  failing(cause: string): string;
  /** Still failing, for another reason. */
  changed(cause: string): string;
  /** Working again after `seconds` of failure. */
  recovered(seconds: number): string;
}

export interface OutageState {
  cause: string;
  /** ISO time of the first failure. */
  since: string;
}

/**
 * The cause of a component's failure as a line may show it: secrets cut out, and without the
 * "component <name> (<type>): " prefix broker errors often carry, since every line that shows a cause names the
 * component itself.
 */
export function describeCause(err: unknown, component: Pick<ResolvedComponent, 'name' | 'type' | 'metadata'>): string {
  const text = redactSecrets(errorMessage(err), component);
  const subject = `component ${component.name} (${component.type}): `;
  return text.startsWith(subject) ? text.slice(subject.length) : text;
}

/**
 * Retries often fail with messages that differ only in numbers (elapsed milliseconds, attempt counts, ephemeral
 * ports): those are the same cause and are not printed again.
 */
function causeKey(cause: string): string {
  return cause.replace(/\d+/g, '#');
}

export class Outage {
  private current: { cause: string; key: string; since: number } | undefined;

  constructor(
    private readonly text: OutageText,
    private readonly print: (level: OutageLevel, line: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** The outage under way, or undefined while the binding works. */
  get state(): OutageState | undefined {
    return this.current ? { cause: this.current.cause, since: new Date(this.current.since).toISOString() } : undefined;
  }

  failed(cause: string): void {
    const key = causeKey(cause);
    if (!this.current) {
      this.current = { cause, key, since: this.now() };
      this.print('error', this.text.failing(cause));
      return;
    }
    if (key !== this.current.key) this.print('warn', this.text.changed(cause));
    this.current.cause = cause;
    this.current.key = key;
  }

  succeeded(): void {
    if (!this.current) return;
    const seconds = Math.max(0, Math.round((this.now() - this.current.since) / 1000));
    this.current = undefined;
    this.print('info', this.text.recovered(seconds));
  }
}
