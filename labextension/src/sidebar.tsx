// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The left sidebar: the user's workspaces with their status, the actions on
 * them (open, star, rename in place, stop, delete, create, refresh), and under
 * each running one the ports it listens on, to preview.
 */

import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import {
  addIcon,
  copyIcon,
  deleteIcon,
  editIcon,
  launchIcon,
  ReactWidget,
  refreshIcon,
  stopIcon,
  ToolbarButtonComponent,
  UseSignal
} from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';
import type { Port, Workspace } from './api';
import { starEmptyIcon, starFilledIcon, workspaceIcon } from './icons';
import type {
  DisplayStatus,
  IWorkspacePorts,
  PortsModel,
  WorkspaceListModel
} from './model';
import type { Texts } from './texts';

/**
 * What the sidebar asks its owner to do.
 */
export interface ISidebarActions {
  open(workspace: Workspace): void;
  create(): void;
  /** Stop the workspace's container (its open terminals say so). */
  stop(workspace: Workspace): Promise<void>;
  /** Open a port's preview in a panel. */
  openPreview(workspace: Workspace, port: number): void;
  /** Open a port's preview in a browser tab. */
  openPreviewTab(workspace: Workspace, port: number): void;
  /** Copy the link of a port's preview. */
  copyPreviewLink(workspace: Workspace, port: number): void;
}

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

interface IItemProps {
  workspace: Workspace;
  status: DisplayStatus;
  /** Its ports when it runs and they were read, else null. */
  ports: IWorkspacePorts | null;
  model: WorkspaceListModel;
  actions: ISidebarActions;
  texts: Texts;
}

function WorkspaceItem(props: IItemProps): JSX.Element {
  const { workspace, status, ports, model, actions, texts } = props;
  const trans = texts.trans;
  const [editing, setEditing] = React.useState(false);
  const [renameError, setRenameError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);
  const inputRef = React.useRef<HTMLInputElement>(null);

  React.useEffect(() => {
    if (editing && inputRef.current) {
      inputRef.current.focus();
      inputRef.current.select();
    }
  }, [editing]);

  const commitRename = async () => {
    const name = inputRef.current?.value.trim() ?? '';
    if (!editing || busy) {
      return;
    }
    if (name === workspace.name) {
      setEditing(false);
      setRenameError(null);
      return;
    }
    setBusy(true);
    try {
      await model.rename(workspace.id, name);
      setEditing(false);
      setRenameError(null);
    } catch (error) {
      setRenameError(error instanceof Error ? error.message : String(error));
      inputRef.current?.focus();
    } finally {
      setBusy(false);
    }
  };

  const toggleStar = async () => {
    try {
      await model.toggleStar(workspace.id);
    } catch (error) {
      Notification.error(
        trans.__(
          'Could not star %1: %2',
          workspace.name,
          String((error as Error).message ?? error)
        ),
        { autoClose: 5000 }
      );
    }
  };

  const remove = async () => {
    const body = (
      <div className="jp-CodeWorkspaces-deleteBody">
        <p>
          {trans.__(
            'Delete the workspace "%1"? Its container is removed, and so are the files in it (the workspace volume), including changes you have not pushed.',
            workspace.name
          )}
        </p>
        <p>{trans.__('This cannot be undone.')}</p>
      </div>
    );
    const result = await showDialog({
      title: trans.__('Delete Code Workspace'),
      body,
      buttons: [
        Dialog.cancelButton({ label: texts.cancel }),
        Dialog.warnButton({ label: trans.__('Delete workspace and files') })
      ]
    });
    if (!result.button.accept) {
      return;
    }
    setBusy(true);
    try {
      await model.remove(workspace.id);
    } catch (error) {
      setBusy(false);
      Notification.error(
        trans.__(
          'Could not delete %1: %2',
          workspace.name,
          String((error as Error).message ?? error)
        ),
        { autoClose: false }
      );
    }
  };

  const stop = async () => {
    setBusy(true);
    try {
      await actions.stop(workspace);
    } finally {
      setBusy(false);
    }
  };

  const repo = workspace.repo
    ? workspace.branch
      ? `${workspace.repo} @ ${workspace.branch}`
      : workspace.repo
    : trans.__('no repository');
  const label = texts.status(status);

  return (
    <li
      className={`jp-CodeWorkspaces-item${busy ? ' jp-mod-busy' : ''}`}
      data-workspace-id={workspace.id}
      data-status={status}
    >
      <span
        className={`jp-CodeWorkspaces-status jp-mod-${status}`}
        title={label}
        role="img"
        aria-label={label}
      />
      <div className="jp-CodeWorkspaces-itemMain">
        {editing ? (
          <div className="jp-CodeWorkspaces-rename">
            <input
              ref={inputRef}
              className="jp-mod-styled jp-CodeWorkspaces-renameInput"
              defaultValue={workspace.name}
              aria-label={trans.__('New name of %1', workspace.name)}
              aria-invalid={renameError !== null}
              disabled={busy}
              onKeyDown={event => {
                if (event.key === 'Enter') {
                  event.preventDefault();
                  void commitRename();
                } else if (event.key === 'Escape') {
                  event.preventDefault();
                  event.stopPropagation();
                  setEditing(false);
                  setRenameError(null);
                }
              }}
              onBlur={() => void commitRename()}
            />
            {renameError && (
              <div className="jp-CodeWorkspaces-fieldError" role="alert">
                {renameError}
              </div>
            )}
          </div>
        ) : (
          <button
            className="jp-CodeWorkspaces-name"
            title={trans.__('Open the terminal of %1', workspace.name)}
            onClick={() => actions.open(workspace)}
          >
            {workspace.name}
          </button>
        )}
        <span className="jp-CodeWorkspaces-repo" title={repo}>
          {repo}
        </span>
      </div>
      <div className="jp-CodeWorkspaces-actions">
        <button
          className="jp-CodeWorkspaces-action jp-CodeWorkspaces-star"
          title={workspace.starred ? trans.__('Unstar') : trans.__('Star')}
          aria-label={workspace.starred ? trans.__('Unstar') : trans.__('Star')}
          aria-pressed={workspace.starred}
          onClick={() => void toggleStar()}
        >
          {workspace.starred ? (
            <starFilledIcon.react tag="span" />
          ) : (
            <starEmptyIcon.react tag="span" />
          )}
        </button>
        {model.canStop(workspace) && (
          <button
            className="jp-CodeWorkspaces-action jp-CodeWorkspaces-stop"
            title={trans.__('Stop (the files are kept)')}
            aria-label={texts.stop}
            disabled={busy}
            onClick={() => void stop()}
          >
            <stopIcon.react tag="span" />
          </button>
        )}
        <button
          className="jp-CodeWorkspaces-action jp-CodeWorkspaces-renameButton"
          title={trans.__('Rename')}
          aria-label={trans.__('Rename')}
          onClick={() => {
            setRenameError(null);
            setEditing(true);
          }}
        >
          <editIcon.react tag="span" />
        </button>
        <button
          className="jp-CodeWorkspaces-action jp-CodeWorkspaces-delete"
          title={trans.__('Delete')}
          aria-label={trans.__('Delete')}
          onClick={() => void remove()}
        >
          <deleteIcon.react tag="span" />
        </button>
      </div>
      {status === 'running' && ports && (
        <PortList
          workspace={workspace}
          ports={ports}
          actions={actions}
          texts={texts}
        />
      )}
    </li>
  );
}

interface IPortListProps {
  workspace: Workspace;
  ports: IWorkspacePorts;
  actions: ISidebarActions;
  texts: Texts;
}

/**
 * The ports a running workspace listens on. A port bound to the container's
 * loopback is shown but cannot be opened (it says how to fix that); a failed
 * reading keeps the last ports and says so quietly.
 */
function PortList(props: IPortListProps): JSX.Element | null {
  const { workspace, ports, actions, texts } = props;
  const words = texts.preview;
  if (ports.status !== 'running' && ports.error === null) {
    return null;
  }
  return (
    <div className="jp-CodeWorkspaces-ports">
      {ports.error !== null && (
        <div className="jp-CodeWorkspaces-portsError" title={ports.error}>
          {words.portsUnavailable}
        </div>
      )}
      {ports.ports.length === 0 && ports.error === null && (
        <div className="jp-CodeWorkspaces-noPorts">{words.noPorts}</div>
      )}
      {ports.ports.length > 0 && (
        <ul
          className="jp-CodeWorkspaces-portList"
          aria-label={words.portsOf(workspace.name)}
        >
          {ports.ports.map(port => (
            <PortRow
              key={`${port.port}-${port.address}`}
              workspace={workspace}
              port={port}
              actions={actions}
              texts={texts}
            />
          ))}
        </ul>
      )}
      {ports.truncated && (
        <div className="jp-CodeWorkspaces-portsTruncated">
          {words.portsTruncated(ports.ports.length)}
        </div>
      )}
    </div>
  );
}

interface IPortRowProps {
  workspace: Workspace;
  port: Port;
  actions: ISidebarActions;
  texts: Texts;
}

function PortRow(props: IPortRowProps): JSX.Element {
  const { workspace, port, actions, texts } = props;
  const words = texts.preview;
  const hintId = `jp-CodeWorkspaces-portHint-${workspace.id}-${port.port}`;
  const hint = port.reachable
    ? null
    : words.loopbackOnly(port.port, port.address);
  return (
    <li
      className={`jp-CodeWorkspaces-port${port.reachable ? '' : ' jp-mod-disabled'}`}
      data-workspace-id={workspace.id}
      data-port={port.port}
      data-reachable={port.reachable ? 'true' : 'false'}
    >
      {/* aria-disabled rather than disabled: it stays focusable, so a
          keyboard or screen reader user still hears why it cannot open. */}
      <button
        className="jp-CodeWorkspaces-portOpen"
        title={hint ?? words.openPort(port.port, workspace.name)}
        aria-label={words.openPort(port.port, workspace.name)}
        aria-disabled={!port.reachable}
        aria-describedby={hint ? hintId : undefined}
        onClick={() => {
          if (port.reachable) {
            actions.openPreview(workspace, port.port);
          }
        }}
      >
        <span className="jp-CodeWorkspaces-portNumber">{port.port}</span>
        <span className="jp-CodeWorkspaces-portAddress">{port.address}</span>
      </button>
      {hint ? (
        <span id={hintId} className="jp-CodeWorkspaces-portHint" title={hint}>
          <span aria-hidden="true">{words.loopbackShort}</span>
          <span className="jp-CodeWorkspaces-visuallyHidden">{hint}</span>
        </span>
      ) : (
        <div className="jp-CodeWorkspaces-portActions">
          <button
            className="jp-CodeWorkspaces-action jp-CodeWorkspaces-portTab"
            title={words.openInBrowserTab}
            aria-label={words.openPortInBrowserTab(port.port)}
            onClick={() => actions.openPreviewTab(workspace, port.port)}
          >
            <launchIcon.react tag="span" />
          </button>
          <button
            className="jp-CodeWorkspaces-action jp-CodeWorkspaces-portCopy"
            title={words.copyLink}
            aria-label={words.copyPortLink(port.port)}
            onClick={() => actions.copyPreviewLink(workspace, port.port)}
          >
            <copyIcon.react tag="span" />
          </button>
        </div>
      )}
    </li>
  );
}
