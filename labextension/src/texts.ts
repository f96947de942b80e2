// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The user-facing texts that more than one place shows (names, statuses,
 * connection messages, buttons), written once and translated by JupyterLab.
 * Texts that only one widget shows stay beside it.
 */

import type { TranslationBundle } from '@jupyterlab/translation';
import { nullTranslator } from '@jupyterlab/translation';
import type { ConnectionPhase, IConnectionTexts } from './terminal/connection';
import type { PortInputProblem } from './preview/ports';
import type { DisplayStatus } from './workspaces/model';

/**
 * The texts of previews: the sidebar's port rows, the preview panel and its
 * commands.
 */
export interface IPreviewTexts {
  /** The list of a workspace's ports. */
  portsOf(workspace: string): string;
  /** A running workspace that listens on no port. */
  noPorts: string;
  /** The ports could not be read (shown quietly; `why` as a tooltip). */
  portsUnavailable: string;
  /** More ports listen than the server lists: only the lowest `count` are shown. */
  portsTruncated(count: number): string;
  /** A port row's button. */
  openPort(port: number, workspace: string): string;
  /** A port bound to the container's loopback, which the preview cannot reach. */
  loopbackOnly(port: number, address: string): string;
  /** The short form of it, beside the port. */
  loopbackShort: string;
  /** Commands and buttons. */
  openPreview: string;
  openPreviewAsk: string;
  openInBrowserTab: string;
  openInBrowserTabAsk: string;
  copyLink: string;
  /** The row buttons' accessible names. */
  openPortInBrowserTab(port: number): string;
  copyPortLink(port: number): string;
  reload: string;
  linkCopied: string;
  /** The caption of the open-preview command. */
  openPreviewCaption: string;
  /** The port dialog. */
  portDialogTitle(workspace: string): string;
  portLabel: string;
  portProblem(problem: PortInputProblem): string;
  pickWorkspaceTitle: string;
  next: string;
  /** What a preview panel says while its port is not (yet) usable. */
  waitingForPort(port: number, workspace: string): string;
  /** The preview URL could not be found out. */
  failed(why: string): string;
  retry: string;
  /** The preview panel's accessible name. */
  frameTitle(workspace: string, port: number): string;
}

/**
 * The translation domain of the extension.
 */
export const TRANSLATION_DOMAIN = 'jupyter_popebot_code';

/**
 * The texts in a language.
 */
export function texts(trans?: TranslationBundle): Texts {
  return new Texts(trans ?? nullTranslator.load(TRANSLATION_DOMAIN));
}

/**
 * The texts of one translation bundle.
 */
export class Texts {
  constructor(readonly trans: TranslationBundle) {
    const t = trans;
    this.workspace = t.__('Code Workspace');
    this.workspaces = t.__('Code Workspaces');
    this.newWorkspace = t.__('New Code Workspace…');
    this.cancel = t.__('Cancel');
    this.create = t.__('Create');
    this.stop = t.__('Stop');
    this.stopping = t.__('Stopping the workspace…');
    this.stopped = t.__(
      'The workspace is stopped; its files are kept. Reconnect to start it again.'
    );
    this.connection = {
      checking: t.__('Checking the workspace…'),
      starting: t.__('Starting the container…'),
      creating: t.__('Creating the container…'),
      connecting: t.__('Connecting to the terminal…'),
      waitingForShell: t.__('Waiting for the shell…'),
      shellExited: t.__(
        'The shell exited. Press Enter or Reconnect to start a new one.'
      ),
      disconnected: why => t.__('Disconnected: %1.', why),
      connectionLost: why => t.__('Connection lost: %1.', why),
      reconnectingIn: (seconds, attempt, max) =>
        max > 0
          ? t.__(
              'Reconnecting in %1 s (attempt %2 of %3)…',
              seconds,
              attempt,
              max
            )
          : t.__('Reconnecting in %1 s (attempt %2)…', seconds, attempt),
      gaveUp: attempts => t.__('Gave up after %1 attempts.', attempts),
      notFound: t.__('This workspace no longer exists.'),
      noContainer: t.__('This workspace has no container.'),
      failed: why => t.__('Could not open the terminal: %1', why)
    };
    this.preview = {
      portsOf: workspace => t.__('Ports of %1', workspace),
      noPorts: t.__('No port is listening.'),
      portsUnavailable: t.__('Ports unavailable'),
      portsTruncated: count =>
        t.__('More ports listen: only the lowest %1 are shown.', count),
      openPort: (port, workspace) =>
        t.__('Preview port %1 of %2', port, workspace),
      loopbackOnly: (port, address) =>
        t.__(
          'Port %1 listens on %2 only, which the preview cannot reach. Start the server on 0.0.0.0 (e.g. --host 0.0.0.0 or --bind 0.0.0.0).',
          port,
          address
        ),
      loopbackShort: t.__('bind to 0.0.0.0'),
      openPreview: t.__('Open Preview'),
      openPreviewAsk: t.__('Open Code Workspace Preview…'),
      openInBrowserTab: t.__('Open in a Browser Tab'),
      openInBrowserTabAsk: t.__(
        'Open Code Workspace Preview in a Browser Tab…'
      ),
      copyLink: t.__('Copy Link'),
      openPortInBrowserTab: port => t.__('Open port %1 in a browser tab', port),
      copyPortLink: port => t.__('Copy the link of port %1', port),
      reload: t.__('Reload Preview'),
      linkCopied: t.__('Preview link copied.'),
      openPreviewCaption: t.__(
        'Preview a web app running in a code workspace (a stopped workspace starts)'
      ),
      portDialogTitle: workspace => t.__('Preview a port of %1', workspace),
      portLabel: t.__('Port (1–65535)'),
      portProblem: problem => {
        switch (problem) {
          case 'empty':
            return t.__('Enter a port number.');
          case 'notANumber':
            return t.__('A port is a whole number, such as 8000.');
          case 'outOfRange':
          default:
            return t.__('A port is between 1 and 65535.');
        }
      },
      pickWorkspaceTitle: t.__('Preview Which Workspace?'),
      next: t.__('Next'),
      waitingForPort: (port, workspace) =>
        t.__(
          'Nothing in %2 listens on port %1 yet (or only on 127.0.0.1). Start your server on 0.0.0.0; the preview reloads by itself when it listens.',
          port,
          workspace
        ),
      failed: why => t.__('Could not open the preview: %1', why),
      retry: t.__('Retry'),
      frameTitle: (workspace, port) =>
        t.__('Preview of port %1 of %2', port, workspace)
    };
  }

  /** One workspace, as the launcher and a new tab call it. */
  readonly workspace: string;
  /** The sidebar's title and the palette's category. */
  readonly workspaces: string;
  /** The create command and the sidebar's create button. */
  readonly newWorkspace: string;
  readonly cancel: string;
  readonly create: string;
  /** The sidebar's stop button. */
  readonly stop: string;
  /** What an open terminal says while and after its workspace stops. */
  readonly stopping: string;
  readonly stopped: string;
  /** What a terminal says about its connection. */
  readonly connection: IConnectionTexts;
  /** Previews of web apps running in workspaces. */
  readonly preview: IPreviewTexts;

  /**
   * The label of a status dot.
   */
  status(status: DisplayStatus): string {
    const t = this.trans;
    switch (status) {
      case 'running':
        return t.__('Running');
      case 'starting':
        return t.__('Starting');
      case 'error':
        return t.__('Error');
      case 'stopped':
      default:
        return t.__('Stopped');
    }
  }

  /**
   * The label of the terminal's retry button in a phase.
   */
  retry(phase: ConnectionPhase): string {
    const t = this.trans;
    switch (phase) {
      case 'failed':
        return t.__('Retry');
      case 'waiting':
        return t.__('Reconnect now');
      default:
        return t.__('Reconnect');
    }
  }
}
