// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * What a preview command acts on: the port its arguments name, the port row
 * under the context menu, the preview panel in view, or one the user picks.
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { InputDialog } from '@jupyterlab/apputils';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import type { Workspace } from '../api';
import { isPort } from '../api';
import type { Texts } from '../texts';
import type { WorkspaceListModel } from '../workspaces/model';
import { pickWorkspace } from '../workspaces/pick';
import type { PortsModel } from './ports';
import { parsePortInput } from './ports';
import type { WorkspacePreview } from './widget';

/**
 * A port of a workspace to preview.
 */
export interface IPreviewTarget {
  workspaceId: string;
  port: number;
  name?: string;
}

/**
 * What finding a target needs.
 */
export interface ITargetOptions {
  model: WorkspaceListModel;
  ports: PortsModel;
  previews: WidgetTracker<MainAreaWidget<WorkspacePreview>>;
  texts: Texts;
}

/**
 * The preview panel the user is looking at, if the current widget is one.
 */
export function currentPreview(
  app: JupyterFrontEnd,
  previews: WidgetTracker<MainAreaWidget<WorkspacePreview>>
): WorkspacePreview | null {
  const current = previews.currentWidget;
  return current && app.shell.currentWidget === current
    ? current.content
    : null;
}

/**
 * The port row under the pointer when the context menu opened.
 */
export function portRowTarget(app: JupyterFrontEnd): IPreviewTarget | null {
  const node = app.contextMenuHitTest(
    n => n.dataset.port !== undefined && n.dataset.workspaceId !== undefined
  );
  const port = Number(node?.dataset.port);
  const workspaceId = node?.dataset.workspaceId;
  return workspaceId && isPort(port) ? { workspaceId, port } : null;
}

/**
 * Ask for a port of a workspace until it is one (or the user cancels).
 * Proposes the first port the workspace is known to serve.
 */
export async function askPort(
  workspace: Workspace,
  ports: PortsModel,
  texts: Texts
): Promise<number | null> {
  const words = texts.preview;
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
export async function findTarget(
  app: JupyterFrontEnd,
  options: ITargetOptions,
  args: ReadonlyPartialJSONObject
): Promise<IPreviewTarget | null> {
  const { model, ports, previews, texts } = options;
  const words = texts.preview;
  const workspaceId = args['workspaceId'] as string | undefined;
  const port = args['port'];
  if (workspaceId && isPort(port)) {
    return { workspaceId, port, name: args['name'] as string | undefined };
  }
  if (args['fromContextMenu']) {
    return portRowTarget(app);
  }
  const current = args['isPalette'] ? null : currentPreview(app, previews);
  if (current) {
    return { workspaceId: current.workspaceId, port: current.port };
  }
  const workspace = await pickWorkspace(app, model, texts, {
    title: words.pickWorkspaceTitle,
    okLabel: words.next
  });
  const picked = workspace ? await askPort(workspace, ports, texts) : null;
  return workspace && picked !== null
    ? { workspaceId: workspace.id, port: picked, name: workspace.name }
    : null;
}
