// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * When and how often a terminal reconnects after its connection drops.
 */

/**
 * Options of the reconnect policy.
 */
export interface IReconnectOptions {
  /** Delay before the first retry, in milliseconds. */
  initialDelay: number;
  /** Upper bound of any delay, in milliseconds. */
  maxDelay: number;
  /** Growth of the delay from one attempt to the next. */
  factor: number;
  /**
   * Fraction of the delay that is randomized (0 to 1), so that many tabs
   * that lost the same server do not all come back at the same instant.
   */
  jitter: number;
  /** Attempts before giving up and asking the user; 0 means never give up. */
  maxAttempts: number;
}

/**
 * Exponential backoff with jitter and a cap.
 */
export class ReconnectPolicy {
  constructor(
    options: Partial<IReconnectOptions> = {},
    random: () => number = Math.random
  ) {
    this.options = { ...ReconnectPolicy.defaults, ...options };
    if (this.options.initialDelay <= 0 || this.options.factor < 1) {
      throw new Error('initialDelay must be positive and factor at least 1');
    }
    this._random = random;
  }

  readonly options: IReconnectOptions;

  /**
   * Attempts made since the last success.
   */
  get attempts(): number {
    return this._attempts;
  }

  /**
   * Whether the policy allows another attempt.
   */
  get exhausted(): boolean {
    const maxAttempts = this.maxAttempts;
    return maxAttempts > 0 && this._attempts >= maxAttempts;
  }

  /**
   * The attempts allowed now: the option, or less after `cap`; 0 means no
   * limit.
   */
  get maxAttempts(): number {
    const { maxAttempts } = this.options;
    if (this._cap === 0) {
      return maxAttempts;
    }
    return maxAttempts > 0 ? Math.min(maxAttempts, this._cap) : this._cap;
  }

  /**
   * Allow at most `attempts` in all until the next reset (a failure that
   * may well persist deserves fewer tries than a dropped network).
   */
  cap(attempts: number): void {
    if (attempts > 0) {
      this._cap = this._cap > 0 ? Math.min(this._cap, attempts) : attempts;
    }
  }

  /**
   * Count an attempt and return how long to wait before making it, or null
   * when the attempts are used up.
   */
  next(): number | null {
    if (this.exhausted) {
      return null;
    }
    const delay = this.delayFor(this._attempts);
    this._attempts++;
    return delay;
  }

  /**
   * The delay before attempt number `attempt` (0-based).
   */
  delayFor(attempt: number): number {
    const { initialDelay, maxDelay, factor, jitter } = this.options;
    const base = Math.min(initialDelay * Math.pow(factor, attempt), maxDelay);
    const spread = base * Math.min(Math.max(jitter, 0), 1);
    // Jitter only shortens the wait, so maxDelay stays a true bound.
    return Math.round(base - spread * this._random());
  }

  /**
   * Start over after a connection that worked.
   */
  reset(): void {
    this._attempts = 0;
    this._cap = 0;
  }

  private _attempts = 0;
  private _cap = 0;
  private _random: () => number;
}

/**
 * The namespace for `ReconnectPolicy` statics.
 */
export namespace ReconnectPolicy {
  export const defaults: IReconnectOptions = {
    initialDelay: 1000,
    maxDelay: 30000,
    factor: 2,
    jitter: 0.2,
    maxAttempts: 12
  };
}

/**
 * What a terminal does when the relay's WebSocket closes with a code.
 *
 * - `confirm-exit`: 1000, a clean close: the shell exited, unless the
 *   container is stopping (then reconnect); the connection checks which.
 * - `final`: reconnecting by itself cannot help and would only hammer the
 *   server; show the reason and let the user reconnect.
 * - `retry-capped`: server trouble that may pass (1011: the engine is not
 *   reachable, the container could not be reached) but may also persist:
 *   retry with backoff, at most `SERVER_ERROR_ATTEMPTS` times.
 * - `retry`: the connection dropped (1006, a restart, ...): retry with backoff.
 */
export type CloseAction = 'confirm-exit' | 'final' | 'retry-capped' | 'retry';

/**
 * Automatic attempts after a 1011 close before the reason stays on screen.
 * A quota refusal, also sent as 1011 by the relay, ends sooner: the first
 * retry's ensure answers 403, which is never retried.
 */
export const SERVER_ERROR_ATTEMPTS = 5;

/**
 * The action for a close code.
 *
 * Final: 1007 (a handshake or resize the relay refused: sending it again is
 * refused again), 1008 (policy: too many terminals open, a refused identity)
 * and 4400-4499 (the relay's "client error" range: unknown workspace,
 * forbidden).
 */
export function closeAction(code: number): CloseAction {
  if (code === 1000) {
    return 'confirm-exit';
  }
  if (code === 1007 || code === 1008 || (code >= 4400 && code < 4500)) {
    return 'final';
  }
  if (code === 1011) {
    return 'retry-capped';
  }
  return 'retry';
}

/**
 * Whether the user, not a timer, decides what happens after a close (the
 * shell exited, or the server refused).
 */
export function isFinalClose(code: number): boolean {
  const action = closeAction(code);
  return action === 'confirm-exit' || action === 'final';
}

/**
 * Whether a failed HTTP call (ensure) should be retried.
 *
 * Client errors (bad request, not authenticated, unknown or someone else's
 * workspace) will fail the same way again; server and network errors may not.
 */
export function isRetryableStatus(status: number | undefined): boolean {
  if (status === undefined || status === 0) {
    return true; // no response at all: network error
  }
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Human text for a WebSocket close, preferring the reason the server gave.
 */
export function describeClose(code: number, reason: string): string {
  const trimmed = reason.trim();
  if (trimmed) {
    return trimmed;
  }
  switch (code) {
    case 1000:
      return 'the shell exited';
    case 1001:
      return 'the server is going away';
    case 1006:
      return 'the connection was lost';
    case 1007:
      return 'the server refused a terminal message';
    case 1008:
      return 'the server refused the connection';
    case 1011:
      return 'the server hit an error';
    case 1012:
      return 'the server is restarting';
    case 1013:
      return 'the server is busy';
    default:
      return `the connection closed (code ${code})`;
  }
}

/**
 * The one pending reconnect of a connection.
 */
export class ReconnectTimer {
  /**
   * Run `retry` after `delay` milliseconds.
   */
  start(delay: number, retry: () => void): void {
    this._timer = setTimeout(() => {
      this._timer = null;
      retry();
    }, delay);
  }

  /**
   * Drop the pending reconnect, if any.
   */
  cancel(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _timer: ReturnType<typeof setTimeout> | null = null;
}
