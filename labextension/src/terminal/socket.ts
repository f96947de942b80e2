// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * One WebSocket to ttyd through the relay, from open to close: the
 * handshake, input and resize frames, decoding what ttyd sends, and flow
 * control of its output. What a connection makes of these events (statuses,
 * reconnects) is its owner's business.
 */

import { FlowControl } from './flow';
import {
  encodeHandshake,
  encodeInput,
  encodePause,
  encodeResize,
  encodeResume,
  type ITerminalSize,
  TTYD_SUBPROTOCOL,
  TtydDecoder
} from './protocol';

/**
 * WebSocket ready states (the `WebSocket` global is not there in every
 * runtime the settings may bring their own implementation for).
 */
const SocketState = { CONNECTING: 0, OPEN: 1 } as const;

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
 * What the socket tells its owner.
 */
export interface ITtydSocketHandlers {
  /** Whether the socket still belongs to the owner's current attempt. */
  isCurrent(): boolean;
  /** The handshake went out: ttyd spawns the shell. */
  opened(): void;
  /** A frame arrived (ttyd speaks), before it is handled. */
  received(): void;
  /** The first output arrived. */
  firstOutput(): void;
  /** ttyd's window title (the shell's title escape sequence). */
  title(title: string): void;
  /** The socket closed (any output left was written first). */
  closed(code: number, reason: string): void;
}

/**
 * A WebSocket speaking ttyd's protocol.
 */
export class TtydSocket {
  constructor(options: TtydSocket.IOptions) {
    const socket = new options.WebSocket(options.url, TTYD_SUBPROTOCOL);
    socket.binaryType = 'arraybuffer';
    // Errors are followed by a close event, which is where they are handled.
    socket.onerror = () => undefined;
    this._socket = socket;
    this._sink = options.sink;
    this._handlers = options.handlers;
    socket.onopen = () => this._onOpen();
    socket.onmessage = (event: MessageEvent) => this._onMessage(event);
    socket.onclose = (event: CloseEvent) => this._onClose(event);
  }

  /**
   * Whether input can go out: open, and the handshake sent.
   */
  get isOpen(): boolean {
    return this._handshakeSent && this._socket.readyState === SocketState.OPEN;
  }

  /**
   * Send keyboard or pasted input, if open.
   */
  sendInput(data: string): void {
    if (this.isOpen) {
      this._socket.send(encodeInput(data));
    }
  }

  /**
   * Tell ttyd the terminal's new size, if open and it changed.
   */
  resize(size: ITerminalSize): void {
    if (
      this._lastSize &&
      this._lastSize.columns === size.columns &&
      this._lastSize.rows === size.rows
    ) {
      return;
    }
    if (this.isOpen) {
      this._lastSize = { ...size };
      this._socket.send(encodeResize(size));
    }
  }

  /**
   * Close the socket without telling the owner (it closed it).
   */
  close(): void {
    const socket = this._socket;
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

  private _onOpen(): void {
    if (!this._handlers.isCurrent()) {
      return;
    }
    // ttyd spawns the shell only once the handshake arrives, with its size.
    const size = this._sink.size();
    this._socket.send(encodeHandshake(size));
    this._lastSize = { ...size };
    this._handshakeSent = true;
    this._handlers.opened();
  }

  private _onMessage(event: MessageEvent): void {
    if (!this._handlers.isCurrent()) {
      return;
    }
    const frame =
      typeof event.data === 'string'
        ? new TextEncoder().encode(event.data)
        : new Uint8Array(event.data as ArrayBuffer);
    const message = this._decoder.decode(frame);
    this._handlers.received();
    switch (message.type) {
      case 'output': {
        if (!this._receivedOutput) {
          this._receivedOutput = true;
          this._handlers.firstOutput();
        }
        this._write(message.text, frame.byteLength);
        break;
      }
      case 'title':
        this._handlers.title(message.title);
        break;
      default:
        // Preferences are ttyd's own client options (`-t`); ours come from
        // JupyterLab's settings instead.
        break;
    }
  }

  /**
   * Hand output to the terminal, pausing ttyd while too much of it waits to
   * be rendered.
   */
  private _write(text: string, size: number): void {
    const socket = this._socket;
    if (this._flow.written(size)) {
      socket.send(encodePause());
    }
    this._sink.write(text, () => {
      if (this._flow.rendered(size) && socket.readyState === SocketState.OPEN) {
        socket.send(encodeResume());
      }
    });
  }

  private _onClose(event: CloseEvent): void {
    const tail = this._decoder.flush();
    if (tail) {
      this._sink.write(tail, () => undefined);
    }
    this._handlers.closed(event.code, event.reason);
  }

  private _socket: WebSocket;
  private _sink: ITerminalSink;
  private _handlers: ITtydSocketHandlers;
  private _decoder = new TtydDecoder();
  private _flow = new FlowControl();
  private _handshakeSent = false;
  private _receivedOutput = false;
  private _lastSize: ITerminalSize | null = null;
}

/**
 * The namespace for `TtydSocket` statics.
 */
export namespace TtydSocket {
  export interface IOptions {
    /** The relay's WebSocket URL of the workspace's terminal. */
    url: string;
    /** The WebSocket implementation (from the server settings). */
    WebSocket: typeof WebSocket;
    sink: ITerminalSink;
    handlers: ITtydSocketHandlers;
  }
}
