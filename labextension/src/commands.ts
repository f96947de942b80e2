// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The extension's commands: create and open workspaces, and act on the
 * current terminal panel (reconnect, copy, paste).
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { WidgetTracker } from '@jupyterlab/apputils';
import {
  Clipboard,
  InputDialog,
  MainAreaWidget,
  Notification
} from '@jupyterlab/apputils';
import type { ITranslator } from '@jupyterlab/translation';
import {
  copyIcon,
  pasteIcon,
  refreshIcon,
  stopIcon
} from '@jupyterlab/ui-components';
import type { Workspace } from './api';
import { CreateWorkspaceDialog } from './dialog';
import { workspaceIcon } from './icons';
import type { WorkspaceListModel } from './model';
import type { ITerminalOptions } from './terminal';
import { WorkspaceTerminal } from './terminal';
import type { Texts } from './texts';
import { CommandIDs } from './tokens';

/**
 * What the commands need besides the app and the tracker.
 */
export interface ICommandsOptions {
  model: WorkspaceListModel;
  texts: Texts;
  translator: ITranslator;
  /** The terminal settings a new panel starts with. */
  terminalOptions: () => Partial<ITerminalOptions>;
}

/**
 * Add the commands of the extension.
 */
export function addCommands(
  app: JupyterFrontEnd,
  tracker: WidgetTracker<MainAreaWidget<WorkspaceTerminal>>,
  options: ICommandsOptions
): void {
  const { commands, shell } = app;
  const { model, texts, translator } = options;
  const trans = texts.trans;

  /**
   * Bring a workspace's panel forward, making it if there is none.
   */
  function openTerminal(
    id: string,
    name?: string
  ): MainAreaWidget<WorkspaceTerminal> {
    const existing = tracker.find(panel => panel.content.workspaceId === id);
    if (existing) {
      shell.activateById(existing.id);
      return existing;
    }
    const content = new WorkspaceTerminal({
      workspaceId: id,
      name,
      client: model.client,
      options: options.terminalOptions(),
      translator
    });
    const panel = new MainAreaWidget({ content });
    panel.id = `jp-CodeWorkspace-${id}`;
    panel.addClass('jp-CodeWorkspacePanel');
    void tracker.add(panel);
    shell.add(panel, 'main');
    shell.activateById(panel.id);
    return panel;
  }

  /**
   * Ask which workspace to open; names may repeat, so the repository shows
   * too and the answer maps back by position.
   */
  async function pickWorkspace(
    choice: {
      title: string;
      okLabel: string;
      filter?: (workspace: Workspace) => boolean;
      none?: string;
    } = { title: trans.__('Open Code Workspace'), okLabel: trans.__('Open') }
  ): Promise<Workspace | null> {
    await model.refresh();
    if (model.error) {
      Notification.error(model.error, { autoClose: 5000 });
      return null;
    }
    const workspaces = model.workspaces.filter(choice.filter ?? (() => true));
    if (workspaces.length === 0 && choice.none) {
      Notification.info(choice.none, { autoClose: 5000 });
      return null;
    }
    if (workspaces.length === 0) {
      Notification.info(trans.__('There is no code workspace yet.'), {
        autoClose: 5000,
        actions: [
          {
            label: trans.__('Create one'),
            callback: () => void commands.execute(CommandIDs.create)
          }
        ]
      });
      return null;
    }
    const labels = workspaces.map(
      (w, i) =>
        `${w.starred ? '★ ' : ''}${w.name}${w.repo ? ` (${w.repo})` : ''} [${i + 1}]`
    );
    const result = await InputDialog.getItem({
      title: choice.title,
      items: labels,
      okLabel: choice.okLabel
    });
    if (!result.button.accept || result.value === null) {
      return null;
    }
    const index = labels.indexOf(result.value);
    return index >= 0 ? workspaces[index] : null;
  }

  /**
   * The terminal the user is looking at, if the current widget is one.
   */
  const currentTerminal = (): WorkspaceTerminal | null => {
    const current = tracker.currentWidget;
    return current && shell.currentWidget === current ? current.content : null;
  };

  commands.addCommand(CommandIDs.create, {
    label: args => (args['isLauncher'] ? texts.workspace : texts.newWorkspace),
    caption: trans.__(
      'Create a Docker code workspace with a terminal, cloning a repository'
    ),
    icon: args => (args['isPalette'] ? undefined : workspaceIcon),
    execute: async args => {
      const workspace = await CreateWorkspaceDialog.show({
        texts,
        create: spec => model.create(spec),
        initial: {
          name: (args['name'] as string | undefined) ?? undefined,
          repo: (args['repo'] as string | undefined) ?? undefined,
          branch: (args['branch'] as string | undefined) ?? undefined
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
          branch: { type: 'string', description: 'Prefilled branch' }
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
        const picked = await pickWorkspace();
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

  commands.addCommand(CommandIDs.reconnect, {
    label: trans.__('Reconnect Code Workspace Terminal'),
    caption: trans.__('Ensure the container runs and reconnect the terminal'),
    icon: args => (args['isPalette'] ? undefined : refreshIcon),
    execute: () => {
      const current = tracker.currentWidget;
      if (!current) {
        return;
      }
      shell.activateById(current.id);
      return current.content.reconnect();
    },
    isEnabled: () => tracker.currentWidget !== null,
    describedBy: { args: { type: 'object', properties: {} } }
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
        const picked = await pickWorkspace({
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

  commands.addCommand(CommandIDs.copy, {
    label: trans.__('Copy'),
    icon: copyIcon.bindprops({ stylesheet: 'menuItem' }),
    execute: () => {
      const terminal = currentTerminal();
      const text = terminal?.getSelection();
      if (terminal && text) {
        Clipboard.copyToSystem(text);
        terminal.activate();
      }
    },
    isEnabled: () => currentTerminal()?.hasSelection() ?? false,
    describedBy: { args: { type: 'object', properties: {} } }
  });

  commands.addCommand(CommandIDs.paste, {
    label: trans.__('Paste'),
    icon: pasteIcon.bindprops({ stylesheet: 'menuItem' }),
    execute: async () => {
      const terminal = currentTerminal();
      if (!terminal) {
        return;
      }
      const text = await window.navigator.clipboard.readText();
      if (text) {
        terminal.paste(text);
        terminal.activate();
      }
    },
    isEnabled: () => currentTerminal() !== null,
    describedBy: { args: { type: 'object', properties: {} } }
  });

  // Enabled states follow the current widget.
  const notify = () => {
    [CommandIDs.reconnect, CommandIDs.copy, CommandIDs.paste].forEach(id =>
      commands.notifyCommandChanged(id)
    );
  };
  tracker.currentChanged.connect(notify);
  shell.currentChanged?.connect(notify);
}
