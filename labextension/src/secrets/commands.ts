// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The command that opens the "Code Workspace Secrets" panel (one at a time).
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { lockIcon } from '@jupyterlab/ui-components';

import type { WorkspacesClient } from '../api';
import type { Texts } from '../texts';
import { CommandIDs } from '../tokens';
import { SecretsClient } from './client';
import { SecretsPanel } from './panel';

export function addSecretsCommand(
  app: JupyterFrontEnd,
  workspaces: WorkspacesClient,
  texts: Texts
): void {
  const trans = texts.trans;
  let panel: MainAreaWidget<SecretsPanel> | null = null;
  app.commands.addCommand(CommandIDs.secrets, {
    label: trans.__('Code Workspace Secrets'),
    caption: trans.__(
      'Your tokens and keys for your code workspaces (environment variables, git credentials)'
    ),
    icon: lockIcon,
    execute: () => {
      if (!panel || panel.isDisposed) {
        const content = new SecretsPanel(new SecretsClient(workspaces), trans);
        panel = new MainAreaWidget({ content });
        panel.id = 'jp-CodeWorkspaces-secrets-panel';
        panel.title.icon = lockIcon;
        app.shell.add(panel, 'main');
      }
      app.shell.activateById(panel.id);
    },
    describedBy: { args: { type: 'object', properties: {} } }
  });
}
