// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * JupyterLab plugin: launcher tile, sidebar, terminal panels and commands for
 * Docker code workspaces. `activate` only wires the parts together.
 */

import type {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ILayoutRestorer } from '@jupyterlab/application';
import {
  ICommandPalette,
  IThemeManager,
  MainAreaWidget,
  WidgetTracker
} from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { IRunningSessionManagers } from '@jupyterlab/running';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
// eslint-disable-next-line jupyter/prefer-lazy-imports -- the sidebar lists workspaces at start
import { clientFromPageConfig, WorkspacesClient } from './api';
// eslint-disable-next-line jupyter/prefer-lazy-imports -- commands register at start
import { addPreviewCommands } from './preview/commands';
// eslint-disable-next-line jupyter/prefer-lazy-imports -- the sidebar lists ports at start
import { PortsModel } from './preview/ports';
import type { WorkspacePreview } from './preview/widget';
// eslint-disable-next-line jupyter/prefer-lazy-imports -- commands register at start
import { addSecretsCommand } from './secrets/commands';
import { addTerminalCommands } from './terminal/commands';
// eslint-disable-next-line jupyter/prefer-lazy-imports -- commands register at start
import { terminalOpener } from './terminal/panel';
import type { ITerminalOptions, WorkspaceTerminal } from './terminal/widget';
import type { Texts } from './texts';
import { texts, TRANSLATION_DOMAIN } from './texts';
import { CommandIDs, ICodeWorkspaceTracker } from './tokens';
// eslint-disable-next-line jupyter/prefer-lazy-imports -- commands register at start
import { addWorkspaceCommands } from './workspaces/commands';
import { WorkspaceListModel } from './workspaces/model';
import { RunningWorkspaces } from './workspaces/running';
// eslint-disable-next-line jupyter/prefer-lazy-imports -- the sidebar shows at start
import { WorkspaceSidebar } from './workspaces/sidebar';

export { CommandIDs, ICodeWorkspaceTracker } from './tokens';

const PLUGIN_ID = 'jupyter-popebot-code:plugin';

type Tracker = WidgetTracker<MainAreaWidget<WorkspaceTerminal>>;
type PreviewTracker = WidgetTracker<MainAreaWidget<WorkspacePreview>>;

/**
 * The code workspaces plugin; provides the tracker of terminal panels.
 */
const plugin: JupyterFrontEndPlugin<ICodeWorkspaceTracker> = {
  id: PLUGIN_ID,
  description: 'Docker code workspaces with a terminal, inside JupyterLab.',
  autoStart: true,
  provides: ICodeWorkspaceTracker,
  optional: [
    ILauncher,
    ICommandPalette,
    ILayoutRestorer,
    IThemeManager,
    ISettingRegistry,
    ITranslator,
    IRunningSessionManagers
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
  translator: ITranslator | null,
  runningSessions: IRunningSessionManagers | null
): ICodeWorkspaceTracker {
  translator = translator ?? nullTranslator;
  const words = texts(translator.load(TRANSLATION_DOMAIN));
  const { commands, shell } = app;
  // A code-workspaces service when the page config names one (JupyterHub),
  // else this server.
  let client: WorkspacesClient;
  try {
    client = clientFromPageConfig(app.serviceManager.serverSettings);
  } catch (reason) {
    console.error(
      'Code workspaces: ignoring a bad service URL; using this server.',
      reason
    );
    client = new WorkspacesClient(app.serviceManager.serverSettings);
  }
  const model = new WorkspaceListModel(client);
  const ports = new PortsModel(model);
  const tracker: Tracker = new WidgetTracker({
    namespace: 'popebot-code-terminal'
  });
  const previews: PreviewTracker = new WidgetTracker({
    namespace: 'popebot-code-preview'
  });
  let options: Partial<ITerminalOptions> = {};

  // Each feature registers its own commands.
  addWorkspaceCommands(app, {
    model,
    texts: words,
    tracker,
    openTerminal: terminalOpener(app, tracker, {
      client,
      translator,
      terminalOptions: () => options
    })
  });
  addTerminalCommands(app, tracker, words);
  addPreviewCommands(app, { model, ports, previews, texts: words });
  addSecretsCommand(app, client, words);

  // Open panels come back after a reload, reconnecting to the same terminal session.
  void restorer?.restore(tracker, {
    command: CommandIDs.open,
    args: panel => ({
      id: panel.content.workspaceId,
      name: panel.content.title.label
    }),
    name: panel => panel.content.workspaceId
  });
  // So do previews (the frame loads again; a stopped workspace starts).
  void restorer?.restore(previews, {
    command: CommandIDs.openPreview,
    args: panel => ({
      workspaceId: panel.content.workspaceId,
      port: panel.content.port,
      name: panel.content.name
    }),
    name: panel => `${panel.content.workspaceId}:${panel.content.port}`
  });

  const sidebar = new WorkspaceSidebar({
    model,
    ports,
    texts: words,
    actions: {
      openPreview: ({ id, name }, port) =>
        void commands.execute(CommandIDs.openPreview, {
          workspaceId: id,
          port,
          name
        }),
      openPreviewTab: ({ id }, port) =>
        void commands.execute(CommandIDs.openPreviewTab, {
          workspaceId: id,
          port
        }),
      copyPreviewLink: ({ id }, port) =>
        void commands.execute(CommandIDs.copyPreviewLink, {
          workspaceId: id,
          port
        }),
      open: ({ id, name }) =>
        void commands.execute(CommandIDs.open, { id, name }),
      create: () => void commands.execute(CommandIDs.create),
      openSecrets: () => void commands.execute(CommandIDs.secrets),
      stop: ({ id, name }) =>
        commands.execute(CommandIDs.stop, { id, name }) as Promise<void>
    }
  });
  shell.add(sidebar, 'left', { rank: 650 });
  restorer?.add(sidebar, sidebar.id);
  // Running workspaces also show where JupyterLab lists what runs.
  runningSessions?.add(
    new RunningWorkspaces(model, words, {
      open: ({ id, name }) =>
        void commands.execute(CommandIDs.open, { id, name }),
      stop: ({ id, name }) =>
        commands.execute(CommandIDs.stop, { id, name }) as Promise<void>
    })
  );
  void model.refresh();
  Private.followModel(tracker, model);
  Private.followNames(previews, model);

  Private.addLauncherAndPalette(words, translator, launcher, palette);
  Private.followTheme(tracker, themeManager);
  Private.followSettings(settingRegistry, settings => {
    options = settings;
    tracker.forEach(panel => panel.content.setOptions(settings));
  });

  return tracker;
}

namespace Private {
  /**
   * The launcher tile and the palette entries.
   */
  export function addLauncherAndPalette(
    words: Texts,
    translator: ITranslator,
    launcher: ILauncher | null,
    palette: ICommandPalette | null
  ): void {
    [
      CommandIDs.create,
      CommandIDs.open,
      CommandIDs.reconnect,
      CommandIDs.stop,
      CommandIDs.refresh,
      CommandIDs.openPreview,
      CommandIDs.openPreviewTab,
      CommandIDs.reloadPreview,
      CommandIDs.secrets
    ].forEach(command =>
      palette?.addItem({
        command,
        category: words.workspaces,
        args: { isPalette: true }
      })
    );
    // JupyterLab's own launcher category, translated as JupyterLab does.
    const trans = translator.load('jupyterlab');
    launcher?.add({
      command: CommandIDs.create,
      category: trans.__('Other'),
      rank: 1,
      args: { isLauncher: true }
    });
  }

  /**
   * Call `apply` with the terminal settings now and on every change.
   */
  export function followSettings(
    settingRegistry: ISettingRegistry | null,
    apply: (options: Partial<ITerminalOptions>) => void
  ): void {
    settingRegistry
      ?.load(PLUGIN_ID)
      .then(settings => {
        const update = () =>
          apply(settings.composite as Partial<ITerminalOptions>);
        update();
        settings.changed.connect(update);
      })
      .catch(reason => {
        console.error(`Failed to load the settings of ${PLUGIN_ID}.`, reason);
      });
  }

  /**
   * Keep the sidebar's dots and the tab titles in step with the terminals,
   * and close the panels of deleted workspaces.
   */
  export function followModel(
    tracker: Tracker,
    model: WorkspaceListModel
  ): void {
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
        const other = tracker.find(
          p => p !== panel && p.content.workspaceId === id
        );
        if (!other) {
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
  }

  /**
   * Keep preview tabs named after their workspaces, and close the previews of
   * deleted workspaces.
   */
  export function followNames(
    previews: PreviewTracker,
    model: WorkspaceListModel
  ): void {
    previews.widgetAdded.connect((_, panel) => {
      let savedLabel = panel.content.title.label;
      panel.content.title.changed.connect(() => {
        if (panel.content.title.label !== savedLabel) {
          savedLabel = panel.content.title.label;
          void previews.save(panel);
        }
      });
    });
    model.changed.connect(() => {
      previews.forEach(panel => {
        const workspace = model.workspaces.find(
          w => w.id === panel.content.workspaceId
        );
        if (workspace && workspace.name !== panel.content.name) {
          panel.content.name = workspace.name;
        }
      });
    });
    model.removed.connect((_, id) => {
      previews.forEach(panel => {
        if (panel.content.workspaceId === id) {
          panel.dispose();
        }
      });
    });
  }

  /**
   * 'inherit' follows JupyterLab's theme: re-read its colors on a change.
   */
  export function followTheme(
    tracker: Tracker,
    themeManager: IThemeManager | null
  ): void {
    const refresh = () =>
      tracker.forEach(panel => panel.content.refreshTheme());
    themeManager?.themeChanged.connect(refresh);
    // Two quick theme requests can announce the first theme after its
    // stylesheet was already swapped out; reading again once a stylesheet has
    // loaded catches the colors that finally apply.
    document.addEventListener(
      'load',
      event => {
        const target = event.target;
        if (target instanceof HTMLLinkElement && target.rel === 'stylesheet') {
          refresh();
        }
      },
      true
    );
  }
}
