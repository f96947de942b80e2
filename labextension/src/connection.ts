// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The life of one workspace terminal's connection: ensure the container,
 * open the relay's WebSocket, speak ttyd's protocol, and come back by itself
 * (ensuring again) when the connection drops.
 *
 * Over 400 lines for one reason: it is one state machine (check, ensure,
 * connect, confirm an exit, back off), whose steps read best side by side.
 */

import type { IDisposable } from '@lumino/disposable';
import type { ISignal } from '@lumino/signaling';
import { Signal } from '@lumino/signaling';
import type { Workspace, WorkspacesClient } from './api';
import { WorkspaceRequestError } from './api';
import {
  encodeHandshake,
  encodeInput,
  encodePause,
  encodeResize,
  encodeResume,
  FlowControl,
  type ITerminalSize,
  TTYD_SUBPROTOCOL,
  TtydDecoder
} from './protocol';
import {
  closeAction,
  describeClose,
  isRetryableStatus,
  ReconnectPolicy,
  SERVER_ERROR_ATTEMPTS
} from './reconnect';
import { texts } from './texts';

/**
 * WebSocket ready states (the `WebSocket` global is not there in every
 * runtime the settings may bring their own implementation for).
 */
const SocketState = { CONNECTING: 0, OPEN: 1 } as const;

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
 * Where terminal output goes: the xterm.js terminal, behind an interface so
 * the connection does not depend on xterm.js.
 */
export interface ITerminalSink {
  /** Write output; call `rendered` once the terminal has processed it. */
  write(text: string, rendered: () => void): void;
  /** Clear the terminal's state before a new connection repaints it. */
  reset(): void;
  /** The terminal's size in cells. */
  size(): ITerminalSize;
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
    if (this._isOpen()) {
      this._socket!.send(encodeInput(data));
    }
  }

  /**
   * Tell ttyd the terminal's new size.
   */
  resize(size: ITerminalSize): void {
    if (
      this._lastSize &&
      this._lastSize.columns === size.columns &&
      this._lastSize.rows === size.rows
    ) {
      return;
    }
    if (this._isOpen()) {
      this._lastSize = { ...size };
      this._socket!.send(encodeResize(size));
    }
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
    this._cancelTimer();
    this._closeSocket();
    this._setStatus('closed', message, canRetry);
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._generation++;
    this._cancelTimer();
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
    this._cancelTimer();
    this._closeSocket();
    const generation = ++this._generation;
    const stale = () => this._isDisposed || generation !== this._generation;
    try {
      this._setStatus('checking', this._texts.checking);
      const workspace = await this._client.get(this.workspaceId);
      if (stale()) {
        return;
      }
      this._workspaceChanged.emit(workspace);
      const state = workspace.container?.status;
      if (state === 'missing' || state === 'dead') {
        this._setStatus('creating', this._texts.creating);
      } else if (state !== 'running') {
        this._setStatus('starting', this._texts.starting);
      }
      const ensured = await this._client.ensure(this.workspaceId);
      if (stale()) {
        return;
      }
      if (ensured.status === 'no_container') {
        this._setStatus(
          'failed',
          this._texts.failed(ensured.message || this._texts.noContainer),
          true
        );
        return;
      }
      this._setStatus('connecting', this._texts.connecting);
      this._openSocket(generation);
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
    const settings = this._client.serverSettings;
    const socket = new settings.WebSocket(
      this._client.terminalUrl(this.workspaceId),
      TTYD_SUBPROTOCOL
    );
    socket.binaryType = 'arraybuffer';
    // Errors are followed by a close event, which is where they are handled.
    socket.onerror = () => undefined;
    this._socket = socket;
    this._lastSize = null;
    this._handshakeSent = false;

    const decoder = new TtydDecoder();
    const flow = new FlowControl();
    const isReconnect = this._hadConnection;
    let receivedOutput = false;

    socket.onopen = () => {
      if (generation !== this._generation) {
        return;
      }
      // ttyd spawns the shell only once the handshake arrives, with its size.
      const size = this._sink.size();
      socket.send(encodeHandshake(size));
      this._lastSize = { ...size };
      this._handshakeSent = true;
      // The relay accepts before it reaches ttyd (it may still be waiting for
      // the container): the terminal is live only once ttyd speaks.
      this._setStatus('connecting', this._texts.waitingForShell);
    };

    socket.onmessage = (event: MessageEvent) => {
      if (generation !== this._generation) {
        return;
      }
      const frame =
        typeof event.data === 'string'
          ? new TextEncoder().encode(event.data)
          : new Uint8Array(event.data as ArrayBuffer);
      const message = decoder.decode(frame);
      if (this._status.phase !== 'connected') {
        this._hadConnection = true;
        this._setStatus('connected', '');
      }
      switch (message.type) {
        case 'output': {
          if (!receivedOutput) {
            receivedOutput = true;
            // Output proves the path works end to end: back off from zero again.
            this._policy.reset();
            if (isReconnect) {
              // tmux repaints the whole screen on attach; stale modes must go.
              this._sink.reset();
            }
          }
          const size = frame.byteLength;
          if (flow.written(size)) {
            socket.send(encodePause());
          }
          this._sink.write(message.text, () => {
            if (flow.rendered(size) && socket.readyState === SocketState.OPEN) {
              socket.send(encodeResume());
            }
          });
          break;
        }
        case 'title':
          this._titleChanged.emit(message.title);
          break;
        default:
          // Preferences are ttyd's own client options (`-t`); ours come from
          // JupyterLab's settings instead.
          break;
      }
    };

    socket.onclose = (event: CloseEvent) => {
      const tail = decoder.flush();
      if (tail) {
        this._sink.write(tail, () => undefined);
      }
      if (socket !== this._socket || generation !== this._generation) {
        return;
      }
      this._socket = null;
      this._onClose(event.code, event.reason);
    };
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
    this._timer = setTimeout(() => {
      this._timer = null;
      void this._connect(true);
    }, delay);
  }

  private _setStatus(
    phase: ConnectionPhase,
    message: string,
    canRetry = false
  ): void {
    this._status = { phase, message, canRetry };
    this._statusChanged.emit(this._status);
  }

  private _isOpen(): boolean {
    return (
      this._socket !== null &&
      this._handshakeSent &&
      this._socket.readyState === SocketState.OPEN
    );
  }

  private _cancelTimer(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _closeSocket(): void {
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onopen = null;
      socket.onmessage = null;
      socket.onclose = null;
      socket.onerror = () => undefined;
      if (
        socket.readyState === SocketState.CONNECTING ||
        socket.readyState === SocketState.OPEN
      ) {
        socket.close(1000);
      }
    }
  }

  private _client: WorkspacesClient;
  private _sink: ITerminalSink;
  private _policy: ReconnectPolicy;
  private _texts: IConnectionTexts;
  private _exitCheckDelay: number;
  private _socket: WebSocket | null = null;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _generation = 0;
  private _hadConnection = false;
  private _handshakeSent = false;
  private _lastSize: ITerminalSize | null = null;
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
