// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The ports a running workspace listens on, as rows under it in the sidebar:
 * open a port's preview in a panel or a browser tab, or copy its link.
 */

import { copyIcon, launchIcon } from '@jupyterlab/ui-components';
import * as React from 'react';
import type { Port, Workspace } from '../api';
import type { Texts } from '../texts';
import type { IWorkspacePorts } from './ports';

/**
 * What a port row asks its owner to do.
 */
export interface IPortActions {
  /** Open a port's preview in a panel. */
  openPreview(workspace: Workspace, port: number): void;
  /** Open a port's preview in a browser tab. */
  openPreviewTab(workspace: Workspace, port: number): void;
  /** Copy the link of a port's preview. */
  copyPreviewLink(workspace: Workspace, port: number): void;
}

interface IPortListProps {
  workspace: Workspace;
  ports: IWorkspacePorts;
  actions: IPortActions;
  texts: Texts;
}

/**
 * The ports a running workspace listens on. A port bound to the container's
 * loopback is shown but cannot be opened (it says how to fix that); a failed
 * reading keeps the last ports and says so quietly.
 */
export function PortList(props: IPortListProps): JSX.Element | null {
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
  actions: IPortActions;
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
