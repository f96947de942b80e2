// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Asking the user which workspace a command is about.
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import { InputDialog, Notification } from '@jupyterlab/apputils';
import type { Workspace } from '../api';
import type { Texts } from '../texts';
import { CommandIDs } from '../tokens';
import type { WorkspaceListModel } from './model';

/**
 * What to ask, and which workspaces qualify.
 */
export interface IPickChoice {
  title: string;
  okLabel: string;
  filter?: (workspace: Workspace) => boolean;
  none?: string;
}

/**
 * Ask which workspace to open; names may repeat, so the repository shows
 * too and the answer maps back by position.
 */
export async function pickWorkspace(
  app: JupyterFrontEnd,
  model: WorkspaceListModel,
  texts: Texts,
  choice: IPickChoice = {
    title: texts.trans.__('Open Code Workspace'),
    okLabel: texts.trans.__('Open')
  }
): Promise<Workspace | null> {
  const { commands } = app;
  const trans = texts.trans;
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
