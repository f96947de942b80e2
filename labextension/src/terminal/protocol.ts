// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * ttyd's WebSocket protocol, as spoken by its own web client: every frame
 * starts with one ASCII byte that says what it is.
 */

/**
 * The WebSocket subprotocol ttyd (and the relay) require.
 */
export const TTYD_SUBPROTOCOL = 'tty';

/**
 * First bytes of client -> ttyd frames.
 */
export namespace ClientCommand {
  export const INPUT = '0';
  export const RESIZE = '1';
  export const PAUSE = '2';
  export const RESUME = '3';
}

/**
 * First bytes of ttyd -> client frames.
 */
export namespace ServerCommand {
  export const OUTPUT = '0'.charCodeAt(0);
  export const SET_WINDOW_TITLE = '1'.charCodeAt(0);
  export const SET_PREFERENCES = '2'.charCodeAt(0);
}

/**
 * A terminal size in character cells.
 */
export interface ITerminalSize {
  columns: number;
  rows: number;
}

const encoder = new TextEncoder();

/**
 * Encode the handshake, which must be the first frame of a connection.
 *
 * The AuthToken stays empty: the relay substitutes the container's credential
 * server-side, so the browser never holds it.
 */
export function encodeHandshake(size: ITerminalSize): Uint8Array {
  return encoder.encode(
    JSON.stringify({
      AuthToken: '',
      columns: clampDimension(size.columns),
      rows: clampDimension(size.rows)
    })
  );
}

/**
 * Encode keyboard (or pasted) input.
 */
export function encodeInput(data: string): Uint8Array {
  const payload = encoder.encode(data);
  const frame = new Uint8Array(payload.length + 1);
  frame[0] = ClientCommand.INPUT.charCodeAt(0);
  frame.set(payload, 1);
  return frame;
}

/**
 * Encode a resize of the terminal.
 */
export function encodeResize(size: ITerminalSize): Uint8Array {
  return encoder.encode(
    ClientCommand.RESIZE +
      JSON.stringify({
        columns: clampDimension(size.columns),
        rows: clampDimension(size.rows)
      })
  );
}

/**
 * Encode a request that ttyd stop sending output (flow control).
 */
export function encodePause(): Uint8Array {
  return encoder.encode(ClientCommand.PAUSE);
}

/**
 * Encode a request that ttyd send output again (flow control).
 */
export function encodeResume(): Uint8Array {
  return encoder.encode(ClientCommand.RESUME);
}

/**
 * A decoded ttyd -> client frame.
 */
export type ServerMessage =
  | { type: 'output'; text: string }
  | { type: 'title'; title: string }
  | { type: 'preferences'; preferences: Record<string, unknown> }
  | { type: 'unknown'; command: number };

/**
 * Decodes the frames of one connection.
 *
 * Output goes through a single streaming UTF-8 decoder, because ttyd splits
 * its output wherever its read buffer ends, including inside a character.
 * Use a new instance for each connection so a cut-off character from a dead
 * connection cannot corrupt the next one.
 */
export class TtydDecoder {
  /**
   * Decode one binary frame.
   */
  decode(frame: ArrayBuffer | Uint8Array): ServerMessage {
    const bytes = frame instanceof Uint8Array ? frame : new Uint8Array(frame);
    if (bytes.length === 0) {
      return { type: 'unknown', command: -1 };
    }
    const payload = bytes.subarray(1);
    switch (bytes[0]) {
      case ServerCommand.OUTPUT:
        return {
          type: 'output',
          text: this._output.decode(payload, { stream: true })
        };
      case ServerCommand.SET_WINDOW_TITLE:
        return { type: 'title', title: new TextDecoder().decode(payload) };
      case ServerCommand.SET_PREFERENCES:
        return {
          type: 'preferences',
          preferences: parsePreferences(new TextDecoder().decode(payload))
        };
      default:
        return { type: 'unknown', command: bytes[0] };
    }
  }

  /**
   * Flush a character left incomplete when the connection ended.
   */
  flush(): string {
    return this._output.decode();
  }

  private _output = new TextDecoder('utf-8');
}

/**
 * Parse ttyd's preferences, tolerating a missing or malformed payload.
 */
function parsePreferences(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/**
 * Keep sizes within what a PTY accepts (ttyd rejects zero or negative sizes).
 */
function clampDimension(value: number): number {
  if (!Number.isFinite(value)) {
    return 1;
  }
  return Math.min(Math.max(Math.floor(value), 1), 65535);
}
