// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * JupyterLab plugin: launcher tile, sidebar, terminal panels and commands for
 * Docker code workspaces.
 */

import type {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ILayoutRestorer } from '@jupyterlab/application';
import {
  Clipboard,
  ICommandPalette,
  InputDialog,
  IThemeManager,
  MainAreaWidget,
  Notification,
  WidgetTracker
} from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { copyIcon, pasteIcon, refreshIcon } from '@jupyterlab/ui-components';
import type { IWorkspace } from './api';
import { WorkspacesClient } from './api';
import { CreateWorkspaceDialog } from './dialog';
import { workspaceIcon } from './icons';
import { WorkspaceListModel } from './model';
import { WorkspaceSidebar } from './sidebar';
import type { ITerminalOptions } from './terminal';
import { WorkspaceTerminal } from './terminal';

/**
 * The command IDs used by the plugin.
 */
export namespace CommandIDs {
  export const create = 'popebot-code:create-workspace';
  export const open = 'popebot-code:open-workspace';
  export const reconnect = 'popebot-code:reconnect';
  export const refresh = 'popebot-code:refresh-workspaces';
  export const copy = 'popebot-code:copy';
  export const paste = 'popebot-code:paste';
}

const PLUGIN_ID = 'jupyter-popebot-code:plugin';

/**
 * The code workspaces plugin.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Docker code workspaces with a terminal, inside JupyterLab.',
  autoStart: true,
  optional: [
    ILauncher,
    ICommandPalette,
    ILayoutRestorer,
    IThemeManager,
    ISettingRegistry,
    ITranslator
  ],
  activate
};

export default plugin;

function activate(
  app: JupyterFrontEnd,
  launcher: ILauncher | null,
  palette: ICommandPalette | null,
  restorer: ILayoutRestorer | null,
  themeManager: IThemeManager | null,
  settingRegistry: ISettingRegistry | null,
  translator: ITranslator | null
): void {
  const trans = (translator ?? nullTranslator).load('jupyter_popebot_code');
  const { commands, shell } = app;
  const client = new WorkspacesClient(app.serviceManager.serverSettings);
  const model = new WorkspaceListModel(client);
  const tracker = new WidgetTracker<MainAreaWidget<WorkspaceTerminal>>({
    namespace: 'popebot-code-terminal'
  });
  let options: Partial<ITerminalOptions> = {};

  // Open panels come back after a reload, reconnecting to the same tmux session.
  if (restorer) {
    void restorer.restore(tracker, {
      command: CommandIDs.open,
      args: widget => ({
        id: widget.content.workspaceId,
        name: widget.content.title.label
      }),
      name: widget => widget.content.workspaceId
    });
  }

  const sidebar = new WorkspaceSidebar({
    model,
    trans,
    actions: {
      open: workspace =>
        void commands.execute(CommandIDs.open, {
          id: workspace.id,
          name: workspace.name
        }),
      create: () => void commands.execute(CommandIDs.create)
    }
  });
  shell.add(sidebar, 'left', { rank: 650 });
  if (restorer) {
    restorer.add(sidebar, sidebar.id);
  }
  void model.refresh();

  // Keep the sidebar's dots and the tab titles in step with the terminals.
  tracker.widgetAdded.connect((_, panel) => {
    const terminal = panel.content;
    const id = terminal.workspaceId;
    terminal.connection.statusChanged.connect((_, status) => {
      model.setPhase(id, status.phase);
    });
    // The restored tab shows the saved name until the workspace loads.
    let savedLabel = terminal.title.label;
    terminal.title.changed.connect(() => {
      if (terminal.title.label !== savedLabel) {
        savedLabel = terminal.title.label;
        void tracker.save(panel);
      }
    });
    panel.disposed.connect(() => {
      if (
        !tracker.find(
          other => other !== panel && other.content.workspaceId === id
        )
      ) {
        model.setPhase(id, null);
      }
    });
  });
  model.changed.connect(() => {
    for (const workspace of model.workspaces) {
      tracker.forEach(panel => {
        if (panel.content.workspaceId === workspace.id) {
          panel.content.title.label = workspace.name;
        }
      });
    }
  });
  // A deleted workspace's panels have nothing left to show.
  model.removed.connect((_, id) => {
    tracker.forEach(panel => {
      if (panel.content.workspaceId === id) {
        panel.dispose();
      }
    });
  });

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
      client,
      options,
      translator: translator ?? nullTranslator
    });
    const panel = new MainAreaWidget({ content });
    panel.id = `jp-CodeWorkspace-${id}`;
    panel.addClass('jp-CodeWorkspacePanel');
    void tracker.add(panel);
    shell.add(panel, 'main');
    shell.activateById(panel.id);
    return panel;
  }

  commands.addCommand(CommandIDs.create, {
    label: args =>
      args['isLauncher']
        ? trans.__('Code Workspace')
        : trans.__('New Code Workspace…'),
    caption: trans.__(
      'Create a Docker code workspace with a terminal, cloning a repository'
    ),
    icon: args => (args['isPalette'] ? undefined : workspaceIcon),
    execute: async args => {
      const workspace = await CreateWorkspaceDialog.show({
        trans,
        create: spec => model.create(spec),
        initial: {
          name: (args['name'] as string | undefined) ?? undefined,
          repo: (args['repo'] as string | undefined) ?? undefined,
          branch: (args['branch'] as string | undefined) ?? undefined
        }
      });
      if (workspace) {
        return openTerminal(workspace.id, workspace.name);
      }
      return null;
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

  async function pickWorkspace(): Promise<IWorkspace | null> {
    await model.refresh();
    if (model.error) {
      Notification.error(model.error, { autoClose: 5000 });
      return null;
    }
    const workspaces = model.workspaces;
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
    // Names may repeat: show the repository too and map back by position.
    const labels = workspaces.map(
      (w, i) =>
        `${w.starred ? '★ ' : ''}${w.name}${w.repo ? ` (${w.repo})` : ''} [${i + 1}]`
    );
    const result = await InputDialog.getItem({
      title: trans.__('Open Code Workspace'),
      items: labels,
      okLabel: trans.__('Open')
    });
    if (!result.button.accept || result.value === null) {
      return null;
    }
    const index = labels.indexOf(result.value);
    return index >= 0 ? workspaces[index] : null;
  }

  const currentTerminal = (): WorkspaceTerminal | null => {
    const current = tracker.currentWidget;
    return current && shell.currentWidget === current ? current.content : null;
  };

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
    isEnabled: () => tracker.currentWidget !== null
  });

  commands.addCommand(CommandIDs.refresh, {
    label: trans.__('Refresh Code Workspaces'),
    caption: trans.__('Fetch the list of code workspaces again'),
    icon: args => (args['isPalette'] ? undefined : refreshIcon),
    execute: () => model.refresh()
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
    isEnabled: () => currentTerminal()?.hasSelection() ?? false
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
    isEnabled: () => currentTerminal() !== null
  });

  const notify = () => {
    [CommandIDs.reconnect, CommandIDs.copy, CommandIDs.paste].forEach(id =>
      commands.notifyCommandChanged(id)
    );
  };
  tracker.currentChanged.connect(notify);
  shell.currentChanged?.connect(notify);

  if (palette) {
    const category = trans.__('Code Workspaces');
    [
      CommandIDs.create,
      CommandIDs.open,
      CommandIDs.reconnect,
      CommandIDs.refresh
    ].forEach(command =>
      palette.addItem({ command, category, args: { isPalette: true } })
    );
  }

  if (launcher) {
    launcher.add({
      command: CommandIDs.create,
      category: 'Other',
      rank: 1,
      args: { isLauncher: true }
    });
  }

  // 'inherit' follows JupyterLab's theme: re-read its colors on a change.
  const refreshThemes = () =>
    tracker.forEach(panel => panel.content.refreshTheme());
  if (themeManager) {
    themeManager.themeChanged.connect(refreshThemes);
  }
  // Two quick theme requests can announce the first theme after its
  // stylesheet was already swapped out; reading again once a stylesheet has
  // loaded catches the colors that finally apply.
  document.addEventListener(
    'load',
    event => {
      const target = event.target;
      if (target instanceof HTMLLinkElement && target.rel === 'stylesheet') {
        refreshThemes();
      }
    },
    true
  );

  if (settingRegistry) {
    const applySettings = (settings: ISettingRegistry.ISettings) => {
      options = settings.composite as Partial<ITerminalOptions>;
      tracker.forEach(panel => {
        const terminal = panel.content;
        (Object.keys(options) as (keyof ITerminalOptions)[]).forEach(key => {
          const value = options[key];
          if (value !== undefined) {
            terminal.setOption(key, value as never);
          }
        });
      });
    };
    settingRegistry
      .load(PLUGIN_ID)
      .then(settings => {
        applySettings(settings);
        settings.changed.connect(applySettings);
      })
      .catch(reason => {
        console.error(`Failed to load the settings of ${PLUGIN_ID}.`, reason);
      });
  }
}
