// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * One workspace in the sidebar: its status, name (renamed in place), star,
 * actions (open, stop, delete) and, while it runs, its ports.
 */

import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { deleteIcon, editIcon, stopIcon } from '@jupyterlab/ui-components';
import * as React from 'react';
import type { Workspace } from '../api';
import { starEmptyIcon, starFilledIcon } from '../icons';
import type { IPortActions } from '../preview/portlist';
import { PortList } from '../preview/portlist';
import type { IWorkspacePorts } from '../preview/ports';
import type { Texts } from '../texts';
import type { DisplayStatus, WorkspaceListModel } from './model';

/**
 * What the sidebar asks its owner to do.
 */
export interface ISidebarActions extends IPortActions {
  open(workspace: Workspace): void;
  create(): void;
  /** Open the panel of the user's personal secrets. */
  openSecrets?(): void;
  /** Stop the workspace's container (its open terminals say so). */
  stop(workspace: Workspace): Promise<void>;
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

export function WorkspaceItem(props: IItemProps): JSX.Element {
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
        {workspace.profile && (
          <span
            className="jp-CodeWorkspaces-profile"
            title={trans.__('Workspace profile: %1', workspace.profile)}
          >
            {workspace.profile}
          </span>
        )}
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
