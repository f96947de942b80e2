// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

import {
  closeAction,
  describeClose,
  isFinalClose,
  isRetryableStatus,
  ReconnectPolicy,
  SERVER_ERROR_ATTEMPTS
} from '../../terminal/reconnect';

describe('ReconnectPolicy', () => {
  it('doubles the delay up to the cap (no jitter)', () => {
    const policy = new ReconnectPolicy({ jitter: 0, maxAttempts: 0 });
    const delays = Array.from({ length: 8 }, () => policy.next());
    expect(delays).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000
    ]);
  });

  it('jitter only shortens the wait, by at most its fraction', () => {
    const low = new ReconnectPolicy({ jitter: 0.2 }, () => 1);
    const high = new ReconnectPolicy({ jitter: 0.2 }, () => 0);
    expect(low.next()).toBe(800);
    expect(high.next()).toBe(1000);
    for (let attempt = 0; attempt < 20; attempt++) {
      const delay = new ReconnectPolicy({}, Math.random).delayFor(attempt);
      expect(delay).toBeLessThanOrEqual(ReconnectPolicy.defaults.maxDelay);
      expect(delay).toBeGreaterThan(0);
    }
  });

  it('gives up after maxAttempts and starts over after reset', () => {
    const policy = new ReconnectPolicy({ maxAttempts: 3, jitter: 0 });
    expect(policy.next()).toBe(1000);
    expect(policy.next()).toBe(2000);
    expect(policy.next()).toBe(4000);
    expect(policy.exhausted).toBe(true);
    expect(policy.next()).toBeNull();
    expect(policy.attempts).toBe(3);
    policy.reset();
    expect(policy.exhausted).toBe(false);
    expect(policy.next()).toBe(1000);
  });

  it('never gives up with maxAttempts 0', () => {
    const policy = new ReconnectPolicy({ maxAttempts: 0 });
    for (let i = 0; i < 100; i++) {
      expect(policy.next()).not.toBeNull();
    }
  });

  it('a cap lowers the attempts until the next reset, never raises them', () => {
    const policy = new ReconnectPolicy({ maxAttempts: 12, jitter: 0 });
    expect(policy.maxAttempts).toBe(12);
    policy.cap(2);
    policy.cap(20); // a looser cap does not undo a tighter one
    expect(policy.maxAttempts).toBe(2);
    expect(policy.next()).toBe(1000);
    expect(policy.next()).toBe(2000);
    expect(policy.next()).toBeNull();
    policy.reset();
    expect(policy.maxAttempts).toBe(12);
    const unlimited = new ReconnectPolicy({ maxAttempts: 0 });
    unlimited.cap(3);
    expect(unlimited.maxAttempts).toBe(3);
    const loose = new ReconnectPolicy({ maxAttempts: 2 });
    loose.cap(5);
    expect(loose.maxAttempts).toBe(2);
  });

  it('refuses options that would spin', () => {
    expect(() => new ReconnectPolicy({ initialDelay: 0 })).toThrow();
    expect(() => new ReconnectPolicy({ factor: 0.5 })).toThrow();
  });
});

describe('close classification', () => {
  it('does not reconnect after an exit or a refusal', () => {
    expect(closeAction(1000)).toBe('confirm-exit');
    // 1007: a bad handshake/resize; 1008: too many terminals, or refused.
    for (const code of [1007, 1008, 4400, 4403, 4404, 4499]) {
      expect(closeAction(code)).toBe('final');
    }
    for (const code of [1000, 1007, 1008, 4403]) {
      expect(isFinalClose(code)).toBe(true);
    }
  });

  it('retries server errors a few times and drops without a cap', () => {
    expect(closeAction(1011)).toBe('retry-capped');
    expect(SERVER_ERROR_ATTEMPTS).toBeGreaterThan(1);
    expect(SERVER_ERROR_ATTEMPTS).toBeLessThan(
      ReconnectPolicy.defaults.maxAttempts
    );
    for (const code of [1001, 1006, 1012, 1013, 1014, 4000, 4500]) {
      expect(closeAction(code)).toBe('retry');
      expect(isFinalClose(code)).toBe(false);
    }
    expect(isFinalClose(1011)).toBe(false);
  });

  it('retries network and server errors, not client errors', () => {
    expect(isRetryableStatus(undefined)).toBe(true);
    expect(isRetryableStatus(0)).toBe(true);
    expect(isRetryableStatus(500)).toBe(true);
    expect(isRetryableStatus(503)).toBe(true);
    expect(isRetryableStatus(429)).toBe(true);
    for (const status of [400, 401, 403, 404, 409]) {
      expect(isRetryableStatus(status)).toBe(false);
    }
  });

  it("prefers the server's reason and explains bare codes", () => {
    expect(describeClose(1011, ' workspace container stopped ')).toBe(
      'workspace container stopped'
    );
    expect(describeClose(1006, '')).toBe('the connection was lost');
    expect(describeClose(1007, '')).toBe(
      'the server refused a terminal message'
    );
    expect(describeClose(1000, '')).toBe('the shell exited');
    expect(describeClose(4999, '')).toBe('the connection closed (code 4999)');
  });
});
