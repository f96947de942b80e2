// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * A terminal connection's status: where it stands, what the user is told,
 * and the bar above the terminal that shows it (with a retry button when
 * retrying makes sense).
 */

/**
 * Where a connection stands.
 *
 * - `idle`: not started yet
 * - `checking`: asking the server about the workspace
 * - `starting` / `creating`: ensuring a stopped / missing container
 * - `connecting`: opening the relay's WebSocket
 * - `connected`: the terminal is live
 * - `waiting`: the connection dropped; a reconnect is scheduled
 * - `closed`: ended on purpose (e.g. the shell exited); the user decides
 * - `failed`: could not connect; the user can retry
 */
export type ConnectionPhase =
  | 'idle'
  | 'checking'
  | 'starting'
  | 'creating'
  | 'connecting'
  | 'connected'
  | 'waiting'
  | 'closed'
  | 'failed';

/**
 * What the user is told about the connection.
 */
export interface IConnectionStatus {
  phase: ConnectionPhase;
  /** Text for the user; empty when there is nothing to say. */
  message: string;
  /** Whether a retry / reconnect button makes sense. */
  canRetry: boolean;
}

/**
 * Texts shown to the user, overridable for translation.
 */
export interface IConnectionTexts {
  checking: string;
  starting: string;
  creating: string;
  connecting: string;
  waitingForShell: string;
  shellExited: string;
  disconnected: (why: string) => string;
  connectionLost: (why: string) => string;
  reconnectingIn: (seconds: number, attempt: number, max: number) => string;
  gaveUp: (attempts: number) => string;
  notFound: string;
  noContainer: string;
  failed: (why: string) => string;
}

const STATUS_CLASS = 'jp-CodeWorkspaceTerminal-status';
const STATUS_TEXT_CLASS = 'jp-CodeWorkspaceTerminal-statusText';
const RETRY_CLASS = 'jp-CodeWorkspaceTerminal-retry';

/**
 * The status bar's DOM.
 */
export class StatusBar {
  /**
   * @param retry - called when the retry button is clicked
   */
  constructor(retry: () => void) {
    this.node = document.createElement('div');
    this.node.className = STATUS_CLASS;
    this.node.setAttribute('role', 'status');
    this._text = document.createElement('span');
    this._text.className = STATUS_TEXT_CLASS;
    this._retryButton = document.createElement('button');
    this._retryButton.className = `jp-mod-styled jp-mod-accept ${RETRY_CLASS}`;
    this._retryButton.addEventListener('click', retry);
    this.node.append(this._text, this._retryButton);
  }

  readonly node: HTMLDivElement;

  /**
   * Show `status`; true when the bar appeared or went away (it takes room
   * from the terminal, which must fit again).
   */
  show(status: IConnectionStatus, retryLabel: string): boolean {
    const visible = status.message !== '';
    const wasVisible = !this.node.hidden;
    this.node.hidden = !visible;
    this.node.dataset.phase = status.phase;
    this._text.textContent = status.message;
    this._retryButton.hidden = !status.canRetry;
    this._retryButton.textContent = retryLabel;
    return visible !== wasVisible;
  }

  private _text: HTMLSpanElement;
  private _retryButton: HTMLButtonElement;
}
