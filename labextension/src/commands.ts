// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The extension's commands: create and open workspaces, act on the current
 * terminal panel (reconnect, copy, paste), and preview the web apps running
 * in workspaces.
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
  CommandToolbarButton,
  copyIcon,
  launchIcon,
  linkIcon,
  pasteIcon,
  refreshIcon,
  stopIcon
} from '@jupyterlab/ui-components';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import type { Workspace } from './api';
import { absolutePreviewUrl, isPort } from './api';
import { CreateWorkspaceDialog } from './dialog';
import { workspaceIcon } from './icons';
import type { PortsModel, WorkspaceListModel } from './model';
import { parsePortInput } from './model';
import { WorkspacePreview } from './preview';
import type { ITerminalOptions } from './terminal';
import { WorkspaceTerminal } from './terminal';
import type { Texts } from './texts';
import { CommandIDs } from './tokens';

/**
 * What the commands need besides the app and the tracker.
 */
export interface ICommandsOptions {
  model: WorkspaceListModel;
  /** The ports of the workspaces, for previews. */
  ports: PortsModel;
  /** The tracker of preview panels. */
  previews: WidgetTracker<MainAreaWidget<WorkspacePreview>>;
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

  addPreviewCommands(app, pickWorkspace, options);

  // Enabled states follow the current widget.
  const notify = () => {
    [
      CommandIDs.reconnect,
      CommandIDs.copy,
      CommandIDs.paste,
      CommandIDs.reloadPreview
    ].forEach(id => commands.notifyCommandChanged(id));
  };
  tracker.currentChanged.connect(notify);
  options.previews.currentChanged.connect(notify);
  shell.currentChanged?.connect(notify);
}

/**
 * A port of a workspace to preview.
 */
interface IPreviewTarget {
  workspaceId: string;
  port: number;
  name?: string;
}

/**
 * The preview commands: open a port in a panel or a browser tab, copy its
 * link, reload a panel. With a workspace id and a port they act on it; from
 * the sidebar's context menu on the port row under the pointer; from a
 * preview panel's toolbar on that panel; otherwise they ask.
 */
function addPreviewCommands(
  app: JupyterFrontEnd,
  pickWorkspace: (choice: {
    title: string;
    okLabel: string;
  }) => Promise<Workspace | null>,
  options: ICommandsOptions
): void {
  const { commands, shell } = app;
  const { model, ports, previews, texts } = options;
  const words = texts.preview;
  const baseUrl = () => model.client.serverSettings.baseUrl;

  const nameOf = (id: string): string | undefined =>
    model.workspaces.find(w => w.id === id)?.name;

  /**
   * The preview panel the user is looking at, if the current widget is one.
   */
  const currentPreview = (): WorkspacePreview | null => {
    const current = previews.currentWidget;
    return current && shell.currentWidget === current ? current.content : null;
  };

  /**
   * The port row under the pointer when the context menu opened.
   */
  const portRowTarget = (): IPreviewTarget | null => {
    const node = app.contextMenuHitTest(
      n => n.dataset.port !== undefined && n.dataset.workspaceId !== undefined
    );
    const port = Number(node?.dataset.port);
    const workspaceId = node?.dataset.workspaceId;
    return workspaceId && isPort(port) ? { workspaceId, port } : null;
  };

  /**
   * Ask for a port of a workspace until it is one (or the user cancels).
   * Proposes the first port the workspace is known to serve.
   */
  async function askPort(workspace: Workspace): Promise<number | null> {
    const known = ports.get(workspace.id)?.ports.find(p => p.reachable);
    let text = known ? String(known.port) : '';
    let problem: string | null = null;
    for (;;) {
      const result = await InputDialog.getText({
        title: words.portDialogTitle(workspace.name),
        label: problem ?? words.portLabel,
        text,
        placeholder: '8000',
        okLabel: words.openPreview,
        cancelLabel: texts.cancel
      });
      if (!result.button.accept || result.value === null) {
        return null;
      }
      const parsed = parsePortInput(result.value);
      if ('port' in parsed) {
        return parsed.port;
      }
      text = result.value;
      problem = words.portProblem(parsed.problem);
    }
  }

  /**
   * What a command acts on (see `addPreviewCommands`), or null when the user
   * cancels.
   */
  async function target(
    args: ReadonlyPartialJSONObject
  ): Promise<IPreviewTarget | null> {
    const workspaceId = args['workspaceId'] as string | undefined;
    const port = args['port'];
    if (workspaceId && isPort(port)) {
      return { workspaceId, port, name: args['name'] as string | undefined };
    }
    if (args['fromContextMenu']) {
      return portRowTarget();
    }
    const current = args['isPalette'] ? null : currentPreview();
    if (current) {
      return { workspaceId: current.workspaceId, port: current.port };
    }
    const workspace = await pickWorkspace({
      title: words.pickWorkspaceTitle,
      okLabel: words.next
    });
    const picked = workspace ? await askPort(workspace) : null;
    return workspace && picked !== null
      ? { workspaceId: workspace.id, port: picked, name: workspace.name }
      : null;
  }

  /**
   * The absolute URL of a port's preview.
   */
  async function urlOf(target: IPreviewTarget): Promise<string> {
    const url = await ports.previewUrl(target.workspaceId, target.port);
    return absolutePreviewUrl(url, baseUrl());
  }

  /**
   * Run `action`, telling the user (quietly) when it fails.
   */
  async function reporting<T>(action: () => Promise<T>): Promise<T | null> {
    try {
      return await action();
    } catch (reason) {
      const why = reason instanceof Error ? reason.message : String(reason);
      Notification.error(words.failed(why), { autoClose: 5000 });
      return null;
    }
  }

  /**
   * Bring a port's preview panel forward, making it if there is none.
   */
  function openPanel(target: IPreviewTarget): MainAreaWidget<WorkspacePreview> {
    const { workspaceId, port } = target;
    const existing = previews.find(
      panel =>
        panel.content.workspaceId === workspaceId && panel.content.port === port
    );
    if (existing) {
      shell.activateById(existing.id);
      return existing;
    }
    const content = new WorkspacePreview({
      workspaceId,
      port,
      name: nameOf(workspaceId) ?? target.name,
      ports,
      texts,
      baseUrl: baseUrl()
    });
    const panel = new MainAreaWidget({ content });
    panel.id = `jp-CodeWorkspacePreview-${workspaceId}-${port}`;
    panel.addClass('jp-CodeWorkspacePreviewPanel');
    const args = { workspaceId, port };
    const buttons: [string, string][] = [
      ['reload', CommandIDs.reloadPreview],
      ['open-tab', CommandIDs.openPreviewTab],
      ['copy-link', CommandIDs.copyPreviewLink]
    ];
    for (const [name, id] of buttons) {
      panel.toolbar.addItem(
        name,
        new CommandToolbarButton({ commands, id, args, label: '' })
      );
    }
    void previews.add(panel);
    shell.add(panel, 'main');
    shell.activateById(panel.id);
    return panel;
  }

  const targetArgs = {
    type: 'object',
    properties: {
      workspaceId: { type: 'string', description: 'The workspace id' },
      port: {
        type: 'integer',
        minimum: 1,
        maximum: 65535,
        description: 'The port the web app listens on in the workspace'
      },
      name: {
        type: 'string',
        description: 'Tab title until the workspace loads'
      }
    }
  };

  commands.addCommand(CommandIDs.openPreview, {
    label: args =>
      args['isPalette'] || !(args['fromContextMenu'] || args['workspaceId'])
        ? words.openPreviewAsk
        : words.openPreview,
    caption: words.openPreviewCaption,
    icon: args => (args['isPalette'] ? undefined : linkIcon),
    execute: async args => {
      const picked = await target(args);
      return picked ? openPanel(picked) : null;
    },
    describedBy: { args: targetArgs }
  });

  commands.addCommand(CommandIDs.openPreviewTab, {
    label: args =>
      args['isPalette'] ? words.openInBrowserTabAsk : words.openInBrowserTab,
    caption: words.openInBrowserTab,
    icon: args => (args['isPalette'] ? undefined : launchIcon),
    execute: async args => {
      const picked = await target(args);
      if (!picked) {
        return;
      }
      await reporting(async () => {
        // No opener: the page cannot reach back into JupyterLab's window.
        window.open(await urlOf(picked), '_blank', 'noopener,noreferrer');
      });
    },
    describedBy: { args: targetArgs }
  });

  commands.addCommand(CommandIDs.copyPreviewLink, {
    label: words.copyLink,
    caption: words.copyLink,
    icon: copyIcon.bindprops({ stylesheet: 'menuItem' }),
    execute: async args => {
      const picked = await target(args);
      if (!picked) {
        return;
      }
      await reporting(async () => {
        Clipboard.copyToSystem(await urlOf(picked));
        Notification.success(words.linkCopied, { autoClose: 2000 });
      });
    },
    describedBy: { args: targetArgs }
  });

  commands.addCommand(CommandIDs.reloadPreview, {
    label: words.reload,
    caption: words.reload,
    icon: args => (args['isPalette'] ? undefined : refreshIcon),
    execute: args => {
      const workspaceId = args['workspaceId'] as string | undefined;
      const panel = workspaceId
        ? previews.find(
            p =>
              p.content.workspaceId === workspaceId &&
              p.content.port === args['port']
          )
        : previews.currentWidget;
      panel?.content.reload();
    },
    isEnabled: args =>
      Boolean(args['workspaceId']) || currentPreview() !== null,
    describedBy: { args: targetArgs }
  });
}
