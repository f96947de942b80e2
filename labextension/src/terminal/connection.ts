// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The life of one workspace terminal's connection: ensure the container,
 * open the relay's WebSocket, speak ttyd's protocol, and come back by itself
 * (ensuring again) when the connection drops.
 *
 * This module is the state machine (check, ensure, connect, confirm an exit,
 * back off); the socket itself is `TtydSocket`, the frames are `protocol`,
 * the backoff is `ReconnectPolicy`.
 */

import type { IDisposable } from '@lumino/disposable';
import type { ISignal } from '@lumino/signaling';
import { Signal } from '@lumino/signaling';
import type { Workspace, WorkspacesClient } from '../api';
import { WorkspaceRequestError } from '../api';
import { texts } from '../texts';
import { ensureWorkspace } from './ensure';
import type { ITerminalSize } from './protocol';
import {
  closeAction,
  describeClose,
  isRetryableStatus,
  ReconnectPolicy,
  ReconnectTimer,
  SERVER_ERROR_ATTEMPTS
} from './reconnect';
import type { ITerminalSink } from './socket';
import type {
  ConnectionPhase,
  IConnectionStatus,
  IConnectionTexts
} from './status';
import { TtydSocket } from './socket';

export type { ITerminalSink } from './socket';
export type {
  ConnectionPhase,
  IConnectionStatus,
  IConnectionTexts
} from './status';

/**
 * One workspace terminal's connection to the relay.
 */
export class TerminalConnection implements IDisposable {
  constructor(options: TerminalConnection.IOptions) {
    this.workspaceId = options.workspaceId;
    this._client = options.client;
    this._sink = options.sink;
    this._policy = options.policy ?? new ReconnectPolicy();
    this._texts = { ...texts().connection, ...options.texts };
    this._exitCheckDelay = options.exitCheckDelay ?? 1000;
  }

  readonly workspaceId: string;

  /**
   * The connection's status for the user.
   */
  get status(): IConnectionStatus {
    return this._status;
  }

  /**
   * Emitted when the status changes.
   */
  get statusChanged(): ISignal<this, IConnectionStatus> {
    return this._statusChanged;
  }

  /**
   * Emitted with the workspace's record each time it is fetched.
   */
  get workspaceChanged(): ISignal<this, Workspace> {
    return this._workspaceChanged;
  }

  /**
   * Emitted with ttyd's window title (the shell's title escape sequence).
   */
  get titleChanged(): ISignal<this, string> {
    return this._titleChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Connect, or reconnect at once, as asked by the user.
   */
  connect(): Promise<void> {
    this._policy.reset();
    return this._connect(false);
  }

  /**
   * Send keyboard or pasted input.
   */
  send(data: string): void {
    if (
      this._status.phase === 'closed' &&
      this._status.canRetry &&
      data === '\r'
    ) {
      // ttyd's own client offers the same: Enter starts a new shell.
      void this.connect();
      return;
    }
    this._socket?.sendInput(data);
  }

  /**
   * Tell ttyd the terminal's new size.
   */
  resize(size: ITerminalSize): void {
    this._socket?.resize(size);
  }

  /**
   * Close the connection and stay closed, showing `message` (e.g. while the
   * workspace is being stopped on purpose, so that no reconnect starts it
   * again behind the user's back). `connect` ends this.
   */
  suspend(message: string, canRetry = true): void {
    if (this._isDisposed) {
      return;
    }
    this._generation++;
    this._timer.cancel();
    this._closeSocket();
    this._setStatus('closed', message, canRetry);
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._generation++;
    this._timer.cancel();
    this._closeSocket();
    Signal.clearData(this);
  }

  /**
   * Ensure the container, then open the WebSocket.
   *
   * @param automatic - whether this is a reconnect the user did not ask for;
   * its failures are retried with backoff instead of shown as final.
   */
  private async _connect(automatic: boolean): Promise<void> {
    if (this._isDisposed) {
      return;
    }
    this._timer.cancel();
    this._closeSocket();
    const generation = ++this._generation;
    const stale = () => this._isDisposed || generation !== this._generation;
    try {
      const ready = await ensureWorkspace(
        this._client,
        this.workspaceId,
        this._texts,
        {
          stale,
          status: (phase, message, canRetry) =>
            this._setStatus(phase, message, canRetry),
          workspace: workspace => this._workspaceChanged.emit(workspace)
        }
      );
      if (ready) {
        this._setStatus('connecting', this._texts.connecting);
        this._openSocket(generation);
      }
    } catch (reason) {
      if (stale()) {
        return;
      }
      this._onConnectError(reason, automatic);
    }
  }

  private _onConnectError(reason: unknown, automatic: boolean): void {
    const status =
      reason instanceof WorkspaceRequestError ? reason.status : undefined;
    const why = reason instanceof Error ? reason.message : String(reason);
    if (status === 404) {
      this._setStatus('failed', this._texts.notFound, false);
      return;
    }
    if (automatic && isRetryableStatus(status)) {
      this._scheduleReconnect(this._texts.connectionLost(why));
      return;
    }
    this._setStatus('failed', this._texts.failed(why), true);
  }

  private _openSocket(generation: number): void {
    const isReconnect = this._hadConnection;
    const socket: TtydSocket = new TtydSocket({
      url: this._client.terminalUrl(this.workspaceId),
      WebSocket: this._client.serverSettings.WebSocket,
      sink: this._sink,
      handlers: {
        isCurrent: () => generation === this._generation,
        opened: () => {
          // The relay accepts before it reaches ttyd (it may still be waiting
          // for the container): the terminal is live only once ttyd speaks.
          this._setStatus('connecting', this._texts.waitingForShell);
        },
        received: () => {
          if (this._status.phase !== 'connected') {
            this._hadConnection = true;
            this._setStatus('connected', '');
          }
        },
        firstOutput: () => {
          // Output proves the path works end to end: back off from zero again.
          this._policy.reset();
          if (isReconnect) {
            // The session replays its recent output on attach; stale modes must go.
            this._sink.reset();
          }
        },
        title: title => this._titleChanged.emit(title),
        closed: (code, reason) => {
          if (socket !== this._socket || generation !== this._generation) {
            return;
          }
          this._socket = null;
          this._onClose(code, reason);
        }
      }
    });
    this._socket = socket;
  }

  private _onClose(code: number, reason: string): void {
    if (this._isDisposed) {
      return;
    }
    const why = describeClose(code, reason);
    switch (closeAction(code)) {
      case 'confirm-exit':
        void this._confirmExit(why);
        break;
      case 'final':
        this._setStatus('closed', this._texts.disconnected(why), true);
        break;
      case 'retry-capped':
        this._policy.cap(SERVER_ERROR_ATTEMPTS);
        this._scheduleReconnect(this._texts.connectionLost(why));
        break;
      default:
        this._scheduleReconnect(this._texts.connectionLost(why));
        break;
    }
  }

  /**
   * A clean close means the shell exited, unless the container is gone:
   * ttyd ends its sessions cleanly when the container is being stopped too.
   */
  private async _confirmExit(why: string): Promise<void> {
    const generation = this._generation;
    const stale = () => this._isDisposed || generation !== this._generation;
    this._setStatus('checking', this._texts.checking);
    // While Docker stops a container, ttyd first ends its sessions and only
    // then exits: give the container a moment to report that it stopped.
    await new Promise(resolve => setTimeout(resolve, this._exitCheckDelay));
    if (stale()) {
      return;
    }
    let state: string | undefined;
    try {
      const workspace = await this._client.get(this.workspaceId);
      if (stale()) {
        return;
      }
      this._workspaceChanged.emit(workspace);
      state = workspace.container?.status;
    } catch (reason) {
      if (!stale()) {
        this._onConnectError(reason, true);
      }
      return;
    }
    if (state === 'running') {
      this._setStatus('closed', this._texts.shellExited, true);
    } else {
      this._scheduleReconnect(
        this._texts.connectionLost(`${why} (container ${state ?? 'unknown'})`)
      );
    }
  }

  private _scheduleReconnect(why: string): void {
    const delay = this._policy.next();
    if (delay === null) {
      this._setStatus(
        'failed',
        `${why} ${this._texts.gaveUp(this._policy.attempts)}`,
        true
      );
      return;
    }
    const seconds = Math.max(1, Math.round(delay / 1000));
    this._setStatus(
      'waiting',
      `${why} ${this._texts.reconnectingIn(
        seconds,
        this._policy.attempts,
        this._policy.maxAttempts
      )}`,
      true
    );
    this._timer.start(delay, () => void this._connect(true));
  }

  private _setStatus(
    phase: ConnectionPhase,
    message: string,
    canRetry = false
  ): void {
    this._status = { phase, message, canRetry };
    this._statusChanged.emit(this._status);
  }

  private _closeSocket(): void {
    const socket = this._socket;
    this._socket = null;
    socket?.close();
  }

  private _client: WorkspacesClient;
  private _sink: ITerminalSink;
  private _policy: ReconnectPolicy;
  private _texts: IConnectionTexts;
  private _exitCheckDelay: number;
  private _socket: TtydSocket | null = null;
  private _timer = new ReconnectTimer();
  private _generation = 0;
  private _hadConnection = false;
  private _isDisposed = false;
  private _status: IConnectionStatus = {
    phase: 'idle',
    message: '',
    canRetry: false
  };
  private _statusChanged = new Signal<this, IConnectionStatus>(this);
  private _workspaceChanged = new Signal<this, Workspace>(this);
  private _titleChanged = new Signal<this, string>(this);
}

/**
 * The namespace for `TerminalConnection` statics.
 */
export namespace TerminalConnection {
  export interface IOptions {
    workspaceId: string;
    client: WorkspacesClient;
    sink: ITerminalSink;
    policy?: ReconnectPolicy;
    texts?: Partial<IConnectionTexts>;
    /** Milliseconds to wait after a clean close before checking the container. */
    exitCheckDelay?: number;
  }
}
