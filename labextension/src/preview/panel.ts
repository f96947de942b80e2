// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * A port's preview panel in the main area, with its toolbar: found if open,
 * else made.
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { WidgetTracker } from '@jupyterlab/apputils';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { CommandToolbarButton } from '@jupyterlab/ui-components';
import type { Texts } from '../texts';
import { CommandIDs } from '../tokens';
import type { WorkspaceListModel } from '../workspaces/model';
import type { PortsModel } from './ports';
import type { IPreviewTarget } from './target';
import { WorkspacePreview } from './widget';

/**
 * What opening a preview panel needs.
 */
export interface IPreviewPanelOptions {
  model: WorkspaceListModel;
  ports: PortsModel;
  previews: WidgetTracker<MainAreaWidget<WorkspacePreview>>;
  texts: Texts;
}

/**
 * Bring a port's preview panel forward, making it if there is none.
 */
export function openPreviewPanel(
  app: JupyterFrontEnd,
  options: IPreviewPanelOptions,
  target: IPreviewTarget
): MainAreaWidget<WorkspacePreview> {
  const { commands, shell } = app;
  const { model, ports, previews, texts } = options;
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
    name: model.workspaces.find(w => w.id === workspaceId)?.name ?? target.name,
    ports,
    texts,
    baseUrl: model.client.serverSettings.baseUrl
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
