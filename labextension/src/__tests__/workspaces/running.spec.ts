/**
 * @jest-environment @jupyterlab/testing/lib/jest-env.js
 */
// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

// The DOM shims JupyterLab's icons need (this file only: the others run in node).
import '@jupyterlab/testing/lib/jest-shim.js';
import { Signal } from '@lumino/signaling';
import type { ContainerStatus, Workspace } from '../../api';
import { texts } from '../../texts';
import type { WorkspaceListModel } from '../../workspaces/model';
import {
  runningTitle,
  runningWorkspaces,
  RunningWorkspaces
} from '../../workspaces/running';

const workspace = (id: string, status: string, repo = ''): Workspace => ({
  id,
  name: `name of ${id}`,
  repo,
  branch: repo ? 'main' : '',
  starred: false,
  container_name: `code-workspace-${id}`,
  created_at: '2026-01-01T00:00:00+00:00',
  updated_at: '2026-01-01T00:00:00+00:00',
  last_used_at: null,
  container: { status: status as ContainerStatus }
});

/**
 * The part of the sidebar's model the section reads, with the sidebar's rule
 * for what can be stopped.
 */
class FakeModel {
  workspaces: Workspace[] = [];
  connected = new Set<string>();
  refreshes = 0;
  changed = new Signal<this, void>(this);

  canStop(w: Workspace): boolean {
    const state = w.container?.status;
    return (
      state === 'running' || state === 'paused' || this.connected.has(w.id)
    );
  }

  refresh(): Promise<void> {
    this.refreshes++;
    this.changed.emit();
    return Promise.resolve();
  }
}

describe('runningTitle', () => {
  it('names the repository and branch when there is one', () => {
    const bare = workspace('a', 'running');
    expect(runningTitle(bare)).toBe('name of a');
    const cloned = workspace('b', 'running', 'octo/demo');
    expect(runningTitle(cloned)).toBe('name of b\nocto/demo (main)');
  });
});

describe('RunningWorkspaces', () => {
  let model: FakeModel;
  let stopped: string[];
  let opened: string[];
  let section: RunningWorkspaces;

  beforeEach(() => {
    model = new FakeModel();
    model.workspaces = [
      workspace('run', 'running'),
      workspace('pause', 'paused'),
      workspace('off', 'exited'),
      workspace('gone', 'missing')
    ];
    stopped = [];
    opened = [];
    section = new RunningWorkspaces(
      model as unknown as WorkspaceListModel,
      texts(),
      {
        open: w => void opened.push(w.id),
        stop: async w => void stopped.push(w.id)
      }
    );
  });

  it('lists the workspaces with a container to stop, in the sidebar order', () => {
    expect(runningWorkspaces(model).map(w => w.id)).toEqual(['run', 'pause']);
    const items = section.running();
    expect(items.map(item => item.label())).toEqual([
      'name of run',
      'name of pause'
    ]);
    expect(items.map(item => item.context)).toEqual(['run', 'pause']);
    // A terminal connected right now counts before the next list says so.
    model.connected.add('off');
    expect(section.running().map(item => item.context)).toEqual([
      'run',
      'pause',
      'off'
    ]);
  });

  it('opens and stops through the actions it was given', () => {
    const [run] = section.running();
    run.open!();
    run.shutdown!();
    expect(opened).toEqual(['run']);
    expect(stopped).toEqual(['run']);
  });

  it('stops every listed workspace on "stop all", after naming them', () => {
    const confirm = section.shutdownAllConfirmationText as () => string;
    expect(confirm()).toBe(
      'Stop all 2 code workspaces (name of run, name of pause)? Their files are kept; opening a terminal starts one again.'
    );
    section.shutdownAll();
    expect(stopped).toEqual(['run', 'pause']);
  });

  it("follows the sidebar's model: its changes, its refresh, no poll of its own", () => {
    expect(section.runningChanged).toBe(model.changed);
    let changes = 0;
    section.runningChanged.connect(() => void changes++);
    model.workspaces = [
      workspace('run', 'exited'),
      workspace('pause', 'paused')
    ];
    section.refreshRunning();
    expect([model.refreshes, changes]).toEqual([1, 1]);
    expect(section.running().map(item => item.context)).toEqual(['pause']);
  });
});
