// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * A local HTTP + WebSocket server that speaks the workspaces API's and ttyd's
 * wire formats, so the client code runs over real sockets in unit tests.
 * (The real server is exercised by the browser tests in ui-tests/.)
 */

import * as http from 'http';
import type { AddressInfo } from 'net';
import { ServerConnection } from '@jupyterlab/services';
import WebSocket, { WebSocketServer } from 'ws';

/**
 * One HTTP request as the server saw it.
 */
export interface IRecordedRequest {
  method: string;
  /** The path, without the query (JupyterLab adds a cache-busting one). */
  url: string;
  query: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * An HTTP answer.
 */
export interface IAnswer {
  status: number;
  body?: unknown;
  /** Raw text instead of JSON. */
  text?: string;
  statusText?: string;
}

/**
 * How the server answers; a promise delays the answer (a slow server).
 */
export type Route = (request: IRecordedRequest) => IAnswer | Promise<IAnswer>;

/**
 * What the ttyd side of the server does with each connection.
 */
export interface ITtydSession {
  socket: WebSocket;
  protocol: string;
  url: string;
  /** Client frames in arrival order, as text. */
  frames: string[];
}

export class WireServer {
  readonly requests: IRecordedRequest[] = [];
  readonly sessions: ITtydSession[] = [];
  route: Route = () => ({ status: 404, body: { message: 'no route' } });
  /** Called when a ttyd session sends a frame. */
  onFrame: (session: ITtydSession, frame: string) => void = () => undefined;
  onSession: (session: ITtydSession) => void = () => undefined;

  async start(): Promise<void> {
    this._http = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', chunk => chunks.push(chunk));
      req.on('end', () => {
        const [path, query = ''] = (req.url ?? '').split('?', 2);
        const recorded: IRecordedRequest = {
          method: req.method ?? '',
          url: path,
          query,
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8')
        };
        this.requests.push(recorded);
        void Promise.resolve(this.route(recorded)).then(answer => {
          if (answer.status === 204) {
            res.writeHead(204);
            res.end();
            return;
          }
          const payload =
            answer.text !== undefined
              ? answer.text
              : JSON.stringify(answer.body ?? {});
          res.writeHead(answer.status, answer.statusText, {
            'Content-Type':
              answer.text !== undefined ? 'text/html' : 'application/json'
          });
          res.end(payload);
        });
      });
    });
    this._ws = new WebSocketServer({
      server: this._http,
      handleProtocols: protocols => (protocols.has('tty') ? 'tty' : false)
    });
    this._ws.on('connection', (socket, request) => {
      const session: ITtydSession = {
        socket,
        protocol: socket.protocol,
        url: request.url ?? '',
        frames: []
      };
      this.sessions.push(session);
      socket.on('message', data => {
        const frame = Buffer.isBuffer(data)
          ? data.toString('utf8')
          : Buffer.from(data as ArrayBuffer).toString('utf8');
        session.frames.push(frame);
        this.onFrame(session, frame);
      });
      this.onSession(session);
    });
    await new Promise<void>(resolve =>
      this._http!.listen(0, '127.0.0.1', () => resolve())
    );
  }

  get port(): number {
    return (this._http!.address() as AddressInfo).port;
  }

  /**
   * JupyterLab server settings pointing at this server under `/base/`.
   */
  settings(
    overrides: Partial<ServerConnection.ISettings> = {}
  ): ServerConnection.ISettings {
    return ServerConnection.makeSettings({
      baseUrl: `http://127.0.0.1:${this.port}/base/`,
      wsUrl: `ws://127.0.0.1:${this.port}/base/`,
      token: 'secret-token',
      appendToken: true,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
      ...overrides
    });
  }

  async stop(): Promise<void> {
    for (const session of this.sessions) {
      session.socket.terminate();
    }
    await new Promise<void>(resolve => this._ws!.close(() => resolve()));
    await new Promise<void>(resolve => this._http!.close(() => resolve()));
  }

  private _http: http.Server | null = null;
  private _ws: WebSocketServer | null = null;
}

/**
 * A ttyd output frame.
 */
export function outputFrame(text: string | Buffer): Buffer {
  const body = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  return Buffer.concat([Buffer.from('0'), body]);
}

/**
 * Resolve when `predicate` holds, checking after every event-loop turn.
 */
export async function until(
  predicate: () => boolean,
  what: string,
  limit = 5000
): Promise<void> {
  for (let turn = 0; turn < limit; turn++) {
    if (predicate()) {
      return;
    }
    await new Promise(resolve => setTimeout(resolve, 2));
  }
  throw new Error(`Gave up waiting until ${what}`);
}
