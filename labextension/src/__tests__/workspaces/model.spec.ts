// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

import { WorkspacesClient } from '../../api';
import { displayStatus, WorkspaceListModel } from '../../workspaces/model';
import { WireServer } from '../wireserver';

const workspace = (id: string, status: string) => ({
  id,
  name: id,
  repo: '',
  branch: '',
  starred: false,
  container_name: `code-workspace-${id}`,
  created_at: '2026-01-01T00:00:00+00:00',
  updated_at: '2026-01-01T00:00:00+00:00',
  container: { status }
});

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

describe('WorkspaceListModel stop', () => {
  let server: WireServer;
  let model: WorkspaceListModel;
  let states: Record<string, string>;

  beforeEach(async () => {
    server = new WireServer();
    await server.start();
    states = { run: 'running', pause: 'paused', off: 'exited' };
    server.route = request => {
      if (request.url.endsWith('/stop')) {
        states.run = 'exited';
        return { status: 200, body: { status: 'stopped' } };
      }
      return {
        status: 200,
        body: {
          workspaces: Object.entries(states).map(([id, s]) => workspace(id, s))
        }
      };
    };
    model = new WorkspaceListModel(new WorkspacesClient(server.settings()));
  });

  afterEach(async () => {
    model.dispose();
    await server.stop();
  });

  it('offers Stop for running or paused containers and connected terminals', async () => {
    await model.refresh();
    const byId = (id: string) => model.workspaces.find(w => w.id === id)!;
    expect(model.canStop(byId('run'))).toBe(true);
    expect(model.canStop(byId('pause'))).toBe(true);
    expect(model.canStop(byId('off'))).toBe(false);
    // A terminal that is connected knows better than an older list.
    model.setPhase('off', 'connected');
    expect(model.canStop(byId('off'))).toBe(true);
  });

  it('stops through the API and shows the new state', async () => {
    await model.refresh();
    await expect(model.stop('run')).resolves.toEqual({ status: 'stopped' });
    expect(server.requests.map(r => `${r.method} ${r.url}`)).toEqual([
      'GET /base/api/code/workspaces',
      'POST /base/api/code/workspaces/run/stop',
      'GET /base/api/code/workspaces'
    ]);
    const run = model.workspaces.find(w => w.id === 'run')!;
    expect(run.container?.status).toBe('exited');
    expect(model.status(run)).toBe('stopped');
    expect(model.canStop(run)).toBe(false);
  });
});
