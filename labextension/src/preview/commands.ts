// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The preview commands: open a port of a workspace in a panel or a browser
 * tab, copy its link, reload a panel.
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { Clipboard, Notification } from '@jupyterlab/apputils';
import {
  copyIcon,
  launchIcon,
  linkIcon,
  refreshIcon
} from '@jupyterlab/ui-components';
import { absolutePreviewUrl } from '../api';
import type { Texts } from '../texts';
import { CommandIDs } from '../tokens';
import type { WorkspaceListModel } from '../workspaces/model';
import { openPreviewPanel } from './panel';
import type { PortsModel } from './ports';
import type { IPreviewTarget } from './target';
import { currentPreview, findTarget } from './target';
import type { WorkspacePreview } from './widget';

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
      const picked = await findTarget(app, options, args);
      return picked ? openPreviewPanel(app, options, picked) : null;
    },
    describedBy: { args: targetArgs }
  });

  commands.addCommand(CommandIDs.openPreviewTab, {
    label: args =>
      args['isPalette'] ? words.openInBrowserTabAsk : words.openInBrowserTab,
    caption: words.openInBrowserTab,
    icon: args => (args['isPalette'] ? undefined : launchIcon),
    execute: async args => {
      const picked = await findTarget(app, options, args);
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
      const picked = await findTarget(app, options, args);
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
      Boolean(args['workspaceId']) || currentPreview(app, previews) !== null,
    describedBy: { args: targetArgs }
  });

  // Enabled states follow the current widget.
  const notify = () => commands.notifyCommandChanged(CommandIDs.reloadPreview);
  previews.currentChanged.connect(notify);
  shell.currentChanged?.connect(notify);
}
