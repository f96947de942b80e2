// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * A workspace's terminal panel in the main area: found if open, else made.
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { WidgetTracker } from '@jupyterlab/apputils';
import { MainAreaWidget } from '@jupyterlab/apputils';
import type { ITranslator } from '@jupyterlab/translation';
import type { WorkspacesClient } from '../api';
import type { ITerminalOptions } from './widget';
import { WorkspaceTerminal } from './widget';

/**
 * What opening a terminal panel needs.
 */
export interface ITerminalPanelOptions {
  client: WorkspacesClient;
  translator: ITranslator;
  /** The terminal settings a new panel starts with. */
  terminalOptions: () => Partial<ITerminalOptions>;
}

/**
 * A function that brings a workspace's panel forward, making it if there is
 * none.
 */
export function terminalOpener(
  app: JupyterFrontEnd,
  tracker: WidgetTracker<MainAreaWidget<WorkspaceTerminal>>,
  options: ITerminalPanelOptions
): (id: string, name?: string) => MainAreaWidget<WorkspaceTerminal> {
  const { shell } = app;
  return (id, name) => {
    const existing = tracker.find(panel => panel.content.workspaceId === id);
    if (existing) {
      shell.activateById(existing.id);
      return existing;
    }
    const content = new WorkspaceTerminal({
      workspaceId: id,
      name,
      client: options.client,
      options: options.terminalOptions(),
      translator: options.translator
    });
    const panel = new MainAreaWidget({ content });
    panel.id = `jp-CodeWorkspace-${id}`;
    panel.addClass('jp-CodeWorkspacePanel');
    void tracker.add(panel);
    shell.add(panel, 'main');
    shell.activateById(panel.id);
    return panel;
  };
}
