// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * What other extensions can use: the tracker of workspace terminal panels
 * (as JupyterLab's `ITerminalTracker`) and the command IDs.
 */

import type { IWidgetTracker, MainAreaWidget } from '@jupyterlab/apputils';
import { Token } from '@lumino/coreutils';
import type { WorkspaceTerminal } from './terminal/widget';

/**
 * Tracks the terminal panels of code workspaces.
 */
export interface ICodeWorkspaceTracker extends IWidgetTracker<
  MainAreaWidget<WorkspaceTerminal>
> {}

/**
 * The token of the code workspace tracker.
 */
export const ICodeWorkspaceTracker = new Token<ICodeWorkspaceTracker>(
  'jupyter-popebot-code:ICodeWorkspaceTracker',
  'A widget tracker of the terminal panels of code workspaces.'
);

/**
 * The command IDs of the extension.
 */
export namespace CommandIDs {
  export const create = 'popebot-code:create-workspace';
  export const open = 'popebot-code:open-workspace';
  export const reconnect = 'popebot-code:reconnect';
  export const stop = 'popebot-code:stop-workspace';
  export const refresh = 'popebot-code:refresh-workspaces';
  export const copy = 'popebot-code:copy';
  export const paste = 'popebot-code:paste';
  export const openPreview = 'popebot-code:open-preview';
  export const openPreviewTab = 'popebot-code:open-preview-tab';
  export const copyPreviewLink = 'popebot-code:copy-preview-link';
  export const reloadPreview = 'popebot-code:reload-preview';
  export const secrets = 'popebot-code:secrets';
}
