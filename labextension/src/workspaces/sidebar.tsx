// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The left sidebar: the user's workspaces with their status, the actions on
 * them (open, star, rename in place, stop, delete, create, refresh), and under
 * each running one the ports it listens on, to preview.
 */

import {
  addIcon,
  lockIcon,
  ReactWidget,
  refreshIcon,
  ToolbarButtonComponent,
  UseSignal
} from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';
import { workspaceIcon } from '../icons';
import type { PortsModel } from '../preview/ports';
import type { Texts } from '../texts';
import type { ISidebarActions } from './item';
import { WorkspaceItem } from './item';
import type { WorkspaceListModel } from './model';

export type { ISidebarActions } from './item';

/**
 * The sidebar widget.
 */
export class WorkspaceSidebar extends ReactWidget {
  constructor(options: WorkspaceSidebar.IOptions) {
    super();
    this._model = options.model;
    this._ports = options.ports;
    this._actions = options.actions;
    this._texts = options.texts;
    this.id = 'jp-CodeWorkspaces-sidebar';
    this.addClass('jp-CodeWorkspaces');
    this.title.icon = workspaceIcon;
    this.title.caption = this._texts.workspaces;
  }

  get model(): WorkspaceListModel {
    return this._model;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._setVisible(true);
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._setVisible(false);
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._setVisible(this.isVisible);
  }

  protected onBeforeDetach(msg: Message): void {
    this._setVisible(false);
    super.onBeforeDetach(msg);
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this._model.changed}>
        {() => (
          <UseSignal signal={this._ports.changed}>
            {() => (
              <WorkspaceList
                model={this._model}
                ports={this._ports}
                actions={this._actions}
                texts={this._texts}
              />
            )}
          </UseSignal>
        )}
      </UseSignal>
    );
  }

  private _setVisible(visible: boolean): void {
    this._model.visible = visible;
    this._ports.visible = visible;
  }

  private _model: WorkspaceListModel;
  private _ports: PortsModel;
  private _actions: ISidebarActions;
  private _texts: Texts;
}

/**
 * The namespace for `WorkspaceSidebar` statics.
 */
export namespace WorkspaceSidebar {
  export interface IOptions {
    model: WorkspaceListModel;
    /** The ports of running workspaces, read while the sidebar is visible. */
    ports: PortsModel;
    actions: ISidebarActions;
    /** The texts, translated. */
    texts: Texts;
  }
}

interface IListProps {
  model: WorkspaceListModel;
  ports: PortsModel;
  actions: ISidebarActions;
  texts: Texts;
}

function WorkspaceList(props: IListProps): JSX.Element {
  const { model, ports, actions, texts } = props;
  const trans = texts.trans;
  const [refreshing, setRefreshing] = React.useState(false);
  const refresh = async () => {
    setRefreshing(true);
    try {
      await model.refresh();
    } finally {
      setRefreshing(false);
    }
  };
  const workspaces = model.workspaces;
  return (
    <div className="jp-CodeWorkspaces-panel">
      <header className="jp-CodeWorkspaces-header">
        <h2 className="jp-CodeWorkspaces-title">{texts.workspaces}</h2>
        <div className="jp-CodeWorkspaces-toolbar">
          <ToolbarButtonComponent
            className="jp-CodeWorkspaces-create"
            icon={addIcon}
            tooltip={texts.newWorkspace}
            onClick={() => actions.create()}
          />
          {actions.openSecrets && (
            <ToolbarButtonComponent
              className="jp-CodeWorkspaces-openSecrets"
              icon={lockIcon}
              tooltip={trans.__('Code Workspace Secrets')}
              onClick={() => actions.openSecrets?.()}
            />
          )}
          <ToolbarButtonComponent
            className="jp-CodeWorkspaces-refresh"
            icon={refreshIcon}
            tooltip={trans.__('Refresh the list')}
            enabled={!refreshing}
            onClick={() => void refresh()}
          />
        </div>
      </header>
      {model.error && (
        <div className="jp-CodeWorkspaces-error" role="alert">
          {model.error}
        </div>
      )}
      {model.loaded && workspaces.length === 0 && !model.error && (
        <div className="jp-CodeWorkspaces-empty">
          <p>{trans.__('No code workspaces yet.')}</p>
          <button
            className="jp-mod-styled jp-mod-accept"
            onClick={() => actions.create()}
          >
            {trans.__('Create a workspace')}
          </button>
        </div>
      )}
      <ul className="jp-CodeWorkspaces-list" aria-label={texts.workspaces}>
        {workspaces.map(workspace => (
          <WorkspaceItem
            key={workspace.id}
            workspace={workspace}
            status={model.status(workspace)}
            ports={ports.get(workspace.id)}
            model={model}
            actions={actions}
            texts={texts}
          />
        ))}
      </ul>
    </div>
  );
}
