// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The preview commands: open a port of a workspace in a panel or a browser
 * tab, copy its link, reload a panel.
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { WidgetTracker } from '@jupyterlab/apputils';
import {
  Clipboard,
  InputDialog,
  MainAreaWidget,
  Notification
} from '@jupyterlab/apputils';
import {
  CommandToolbarButton,
  copyIcon,
  launchIcon,
  linkIcon,
  refreshIcon
} from '@jupyterlab/ui-components';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import type { Workspace } from '../api';
import { absolutePreviewUrl, isPort } from '../api';
import type { Texts } from '../texts';
import { CommandIDs } from '../tokens';
import type { WorkspaceListModel } from '../workspaces/model';
import { pickWorkspace } from '../workspaces/pick';
import type { PortsModel } from './ports';
import { parsePortInput } from './ports';
import { WorkspacePreview } from './widget';

/**
 * What the preview commands need besides the app.
 */
export interface IPreviewCommandsOptions {
  model: WorkspaceListModel;
  /** The ports of the workspaces. */
  ports: PortsModel;
  /** The tracker of preview panels. */
  previews: WidgetTracker<MainAreaWidget<WorkspacePreview>>;
  texts: Texts;
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
export function addPreviewCommands(
  app: JupyterFrontEnd,
  options: IPreviewCommandsOptions
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
    const workspace = await pickWorkspace(app, model, texts, {
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

  // Enabled states follow the current widget.
  const notify = () => commands.notifyCommandChanged(CommandIDs.reloadPreview);
  previews.currentChanged.connect(notify);
  shell.currentChanged?.connect(notify);
}
