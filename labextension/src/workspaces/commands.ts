// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The commands on workspaces: create, open (its terminal), stop, refresh the
 * list.
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { Notification } from '@jupyterlab/apputils';
import { refreshIcon, stopIcon } from '@jupyterlab/ui-components';
import { workspaceIcon } from '../icons';
import type { WorkspaceTerminal } from '../terminal/widget';
import type { Texts } from '../texts';
import { CommandIDs } from '../tokens';
import { CreateWorkspaceDialog } from './dialog';
import type { WorkspaceListModel } from './model';
import { pickWorkspace } from './pick';

/**
 * What the workspace commands need besides the app.
 */
export interface IWorkspaceCommandsOptions {
  model: WorkspaceListModel;
  texts: Texts;
  /** The terminal panels, which stand still while their workspace stops. */
  tracker: WidgetTracker<MainAreaWidget<WorkspaceTerminal>>;
  /** Bring a workspace's terminal panel forward, making it if there is none. */
  openTerminal: (
    id: string,
    name?: string
  ) => MainAreaWidget<WorkspaceTerminal>;
}

/**
 * Add the workspace commands.
 */
export function addWorkspaceCommands(
  app: JupyterFrontEnd,
  options: IWorkspaceCommandsOptions
): void {
  const { commands } = app;
  const { model, texts, tracker, openTerminal } = options;
  const trans = texts.trans;

  commands.addCommand(CommandIDs.create, {
    label: args => (args['isLauncher'] ? texts.workspace : texts.newWorkspace),
    caption: trans.__(
      'Create a Docker code workspace with a terminal, cloning a repository'
    ),
    icon: args => (args['isPalette'] ? undefined : workspaceIcon),
    execute: async args => {
      // Without the list the dialog shows no picker and the server's default
      // profile is used: creating a workspace still works.
      const profiles = await model.client.profiles().catch(() => []);
      const workspace = await CreateWorkspaceDialog.show({
        texts,
        profiles,
        create: spec => model.create(spec),
        initial: {
          name: (args['name'] as string | undefined) ?? undefined,
          repo: (args['repo'] as string | undefined) ?? undefined,
          branch: (args['branch'] as string | undefined) ?? undefined,
          profile: (args['profile'] as string | undefined) ?? undefined
        }
      });
      return workspace ? openTerminal(workspace.id, workspace.name) : null;
    },
    describedBy: {
      args: {
        type: 'object',
        properties: {
          name: { type: 'string', description: 'Prefilled name' },
          repo: { type: 'string', description: 'Prefilled repository' },
          branch: { type: 'string', description: 'Prefilled branch' },
          profile: {
            type: 'string',
            description: 'Preselected workspace profile (its slug)'
          }
        }
      }
    }
  });

  commands.addCommand(CommandIDs.open, {
    label: args =>
      args['id']
        ? trans.__(
            'Open %1',
            (args['name'] as string) || (args['id'] as string)
          )
        : trans.__('Open Code Workspace…'),
    caption: trans.__("Open a code workspace's terminal"),
    icon: args => (args['isPalette'] ? undefined : workspaceIcon),
    execute: async args => {
      let id = args['id'] as string | undefined;
      let name = args['name'] as string | undefined;
      if (!id) {
        const picked = await pickWorkspace(app, model, texts);
        if (!picked) {
          return null;
        }
        ({ id, name } = picked);
      }
      return openTerminal(id, name);
    },
    describedBy: {
      args: {
        type: 'object',
        properties: {
          id: { type: 'string', description: 'The workspace id' },
          name: {
            type: 'string',
            description: 'Tab title until the workspace loads'
          }
        }
      }
    }
  });

  /**
   * Stop a workspace. Its open terminals stand still first, so that none of
   * them reconnects (which would start it again) while it stops.
   */
  async function stopWorkspace(id: string, name: string): Promise<void> {
    const panels: WorkspaceTerminal[] = [];
    tracker.forEach(panel => {
      if (panel.content.workspaceId === id) {
        panels.push(panel.content);
      }
    });
    panels.forEach(t => t.connection.suspend(texts.stopping, false));
    try {
      await model.stop(id);
      panels.forEach(t => t.connection.suspend(texts.stopped));
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      const message = trans.__('Could not stop %1: %2', name, why);
      panels.forEach(t => t.connection.suspend(message));
      Notification.error(message, { autoClose: false });
    }
  }

  commands.addCommand(CommandIDs.stop, {
    label: args =>
      args['id'] && !args['isPalette']
        ? trans.__(
            'Stop %1',
            (args['name'] as string) || (args['id'] as string)
          )
        : trans.__('Stop Code Workspace'),
    caption: trans.__(
      "Stop a code workspace's container; its files are kept and opening its terminal starts it again"
    ),
    icon: args => (args['isPalette'] ? undefined : stopIcon),
    execute: async args => {
      let id = args['id'] as string | undefined;
      let name = args['name'] as string | undefined;
      if (!id && !args['isPalette'] && tracker.currentWidget) {
        // From the terminal's context menu: that terminal's workspace.
        const terminal = tracker.currentWidget.content;
        id = terminal.workspaceId;
        name = terminal.title.label;
      }
      if (!id) {
        const picked = await pickWorkspace(app, model, texts, {
          title: trans.__('Stop Code Workspace'),
          okLabel: texts.stop,
          filter: workspace => model.canStop(workspace),
          none: trans.__('No code workspace is running.')
        });
        if (!picked) {
          return;
        }
        ({ id, name } = picked);
      }
      await stopWorkspace(id, name || id);
    },
    describedBy: {
      args: {
        type: 'object',
        properties: {
          id: { type: 'string', description: 'The workspace id' },
          name: { type: 'string', description: 'Its name, for messages' }
        }
      }
    }
  });

  commands.addCommand(CommandIDs.refresh, {
    label: trans.__('Refresh Code Workspaces'),
    caption: trans.__('Fetch the list of code workspaces again'),
    icon: args => (args['isPalette'] ? undefined : refreshIcon),
    execute: () => model.refresh(),
    describedBy: { args: { type: 'object', properties: {} } }
  });
}
