// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Running code workspaces in JupyterLab's "Running Terminals and Kernels"
 * panel, where users look to see and shut down what runs. The section reads
 * the sidebar's model, so both show the same list with no poll of their own.
 */

import type { IRunningSessions } from '@jupyterlab/running';
import { stopIcon } from '@jupyterlab/ui-components';
import type { ISignal } from '@lumino/signaling';
import type { Workspace } from '../api';
import { workspaceIcon } from '../icons';
import type { Texts } from '../texts';
import type { WorkspaceListModel } from './model';

/**
 * What the section does with a workspace: the extension's own commands, so a
 * stop from here stands the terminals still first, like the sidebar's.
 */
export interface IRunningActions {
  open(workspace: Workspace): void;
  stop(workspace: Workspace): Promise<void>;
}

/**
 * The workspaces the section lists: those with a container to stop (running,
 * paused, or a terminal connected to it), in the sidebar's order.
 */
export function runningWorkspaces(
  model: Pick<WorkspaceListModel, 'workspaces' | 'canStop'>
): Workspace[] {
  return model.workspaces.filter(workspace => model.canStop(workspace));
}

/**
 * The tooltip of a listed workspace: its repository and branch, when it has one.
 */
export function runningTitle(workspace: Workspace): string {
  if (!workspace.repo) {
    return workspace.name;
  }
  const branch = workspace.branch ? ` (${workspace.branch})` : '';
  return `${workspace.name}\n${workspace.repo}${branch}`;
}

/**
 * The code workspaces section of the running-sessions panel.
 */
export class RunningWorkspaces implements IRunningSessions.IManager {
  constructor(
    private readonly _model: WorkspaceListModel,
    private readonly _texts: Texts,
    private readonly _actions: IRunningActions
  ) {
    const trans = _texts.trans;
    this.name = _texts.workspaces;
    this.shutdownLabel = trans.__('Stop');
    this.shutdownAllLabel = trans.__('Stop All');
    this.shutdownItemIcon = stopIcon;
  }

  readonly name: string;
  readonly shutdownLabel: string;
  readonly shutdownAllLabel: string;
  readonly shutdownItemIcon: typeof stopIcon;

  /**
   * The model's changes: a refresh, a stop, a terminal connecting.
   */
  get runningChanged(): ISignal<WorkspaceListModel, void> {
    return this._model.changed;
  }

  /**
   * The confirmation JupyterLab asks before "Stop All": it names what stops.
   */
  shutdownAllConfirmationText = (): string => {
    const names = runningWorkspaces(this._model).map(w => w.name);
    return this._texts.trans._n(
      'Stop the code workspace %2? Its files are kept; opening its terminal starts it again.',
      'Stop all %1 code workspaces (%2)? Their files are kept; opening a terminal starts one again.',
      names.length,
      names.join(', ')
    );
  };

  running(): IRunningSessions.IRunningItem[] {
    return runningWorkspaces(this._model).map(workspace => ({
      className: 'jp-CodeWorkspaces-runningItem',
      context: workspace.id,
      icon: () => workspaceIcon,
      label: () => workspace.name,
      labelTitle: () => runningTitle(workspace),
      open: () => this._actions.open(workspace),
      shutdown: () => void this._actions.stop(workspace)
    }));
  }

  refreshRunning(): void {
    void this._model.refresh();
  }

  shutdownAll(): void {
    // JupyterLab has asked for confirmation already.
    for (const workspace of runningWorkspaces(this._model)) {
      void this._actions.stop(workspace);
    }
  }
}
