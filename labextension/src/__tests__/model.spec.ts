// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

import { displayStatus } from '../model';

describe('displayStatus', () => {
  it("maps Docker's states to the sidebar's four", () => {
    expect(displayStatus('running')).toBe('running');
    expect(displayStatus('restarting')).toBe('starting');
    for (const state of ['exited', 'created', 'paused', 'missing'] as const) {
      expect(displayStatus(state)).toBe('stopped');
    }
    expect(displayStatus('dead')).toBe('error');
    expect(displayStatus('unknown')).toBe('error');
    expect(displayStatus(undefined)).toBe('stopped');
  });

  it('prefers what an open terminal is doing right now', () => {
    for (const phase of [
      'checking',
      'starting',
      'creating',
      'connecting',
      'waiting'
    ] as const) {
      expect(displayStatus('exited', phase)).toBe('starting');
    }
    expect(displayStatus('exited', 'connected')).toBe('running');
    expect(displayStatus('running', 'failed')).toBe('error');
    // A shell that exited says nothing about the container.
    expect(displayStatus('running', 'closed')).toBe('running');
    expect(displayStatus('exited', 'idle')).toBe('stopped');
  });
});
