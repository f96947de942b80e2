// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

import { WorkspacesClient } from '../../api';
import type {
  ConnectionPhase,
  IConnectionStatus,
  ITerminalSink
} from '../../terminal/connection';
import { TerminalConnection } from '../../terminal/connection';
import {
  ReconnectPolicy,
  SERVER_ERROR_ATTEMPTS
} from '../../terminal/reconnect';
import type { IAnswer, IRecordedRequest, ITtydSession } from '../wireserver';
import { outputFrame, until, WireServer } from '../wireserver';

const workspace = (status: string) => ({
  id: 'w1',
  name: 'demo',
  repo: 'octo/demo',
  branch: 'main',
  starred: false,
  container_name: 'code-workspace-w1',
  created_at: '2026-01-01T00:00:00+00:00',
  updated_at: '2026-01-01T00:00:00+00:00',
  container: { status }
});

/** A sink that records what the terminal would show. */
class RecordingSink implements ITerminalSink {
  output = '';
  resets = 0;
  columns = 80;
  rows = 24;
  write(text: string, rendered: () => void): void {
    this.output += text;
    rendered();
  }
  reset(): void {
    this.resets++;
    this.output = '';
  }
  size() {
    return { columns: this.columns, rows: this.rows };
  }
}

/**
 * ttyd's behavior: title and preferences after the handshake, then input
 * echoed back as output.
 */
function echoLikeTtyd(session: ITtydSession, frame: string): void {
  if (frame.startsWith('{')) {
    session.socket.send(Buffer.from('1bash (w1)'));
    session.socket.send(Buffer.from('2{}'));
  } else if (frame.startsWith('0')) {
    session.socket.send(outputFrame(frame.slice(1)));
  }
}

describe('TerminalConnection', () => {
  let server: WireServer;
  let sink: RecordingSink;
  let connection: TerminalConnection;
  let phases: ConnectionPhase[];
  let statuses: IConnectionStatus[];
  let containerStatus: string;
  let ensureAnswer: () => IAnswer;

  const route = (request: IRecordedRequest): IAnswer => {
    if (request.url.endsWith('/ensure')) {
      return ensureAnswer();
    }
    return { status: 200, body: workspace(containerStatus) };
  };

  const make = (
    policy = new ReconnectPolicy({ initialDelay: 5, maxDelay: 20, jitter: 0 })
  ) => {
    connection = new TerminalConnection({
      workspaceId: 'w1',
      client: new WorkspacesClient(server.settings()),
      sink,
      policy,
      exitCheckDelay: 5
    });
    connection.statusChanged.connect((_, status) => {
      phases.push(status.phase);
      statuses.push(status);
    });
  };

  beforeEach(async () => {
    server = new WireServer();
    await server.start();
    server.route = route;
    server.onFrame = echoLikeTtyd;
    sink = new RecordingSink();
    phases = [];
    statuses = [];
    containerStatus = 'running';
    ensureAnswer = () => ({ status: 200, body: { status: 'running' } });
    make();
  });

  afterEach(async () => {
    connection.dispose();
    await server.stop();
  });

  it('ensures, then sends the handshake first, then input and resizes', async () => {
    const titles: string[] = [];
    connection.titleChanged.connect((_, title) => titles.push(title));
    await connection.connect();
    await until(() => connection.status.phase === 'connected', 'connected');
    connection.send('echo $((6*7))\r');
    await until(() => sink.output === 'echo $((6*7))\r', 'echo');
    connection.resize({ columns: 100, rows: 30 });
    connection.resize({ columns: 100, rows: 30 }); // unchanged: not sent again
    await until(() => server.sessions[0].frames.length === 3, 'resize frame');

    expect(server.requests.map(r => `${r.method} ${r.url}`)).toEqual([
      'GET /base/api/code/workspaces/w1',
      'POST /base/api/code/workspaces/w1/ensure'
    ]);
    const session = server.sessions[0];
    expect(session.protocol).toBe('tty');
    expect(session.url).toBe('/base/api/ws/code/w1?token=secret-token');
    expect(JSON.parse(session.frames[0])).toEqual({
      AuthToken: '',
      columns: 80,
      rows: 24
    });
    expect(session.frames.slice(1)).toEqual([
      '0echo $((6*7))\r',
      '1{"columns":100,"rows":30}'
    ]);
    expect(phases).toEqual([
      'checking',
      'connecting',
      'connecting',
      'connected'
    ]);
    expect(statuses[2].message).toBe('Waiting for the shell…');
    expect(titles).toEqual(['bash (w1)']);
  });

  it('says it is creating a missing container and starting a stopped one', async () => {
    containerStatus = 'missing';
    ensureAnswer = () => ({ status: 200, body: { status: 'created' } });
    await connection.connect();
    await until(() => connection.status.phase === 'connected', 'connected');
    expect(phases).toEqual([
      'checking',
      'creating',
      'connecting',
      'connecting',
      'connected'
    ]);
    expect(statuses[1].message).toBe('Creating the container…');

    connection.dispose();
    phases = [];
    statuses = [];
    containerStatus = 'exited';
    make();
    await connection.connect();
    await until(() => connection.status.phase === 'connected', 'connected');
    expect(phases).toEqual([
      'checking',
      'starting',
      'connecting',
      'connecting',
      'connected'
    ]);
    expect(statuses[1].message).toBe('Starting the container…');
  });

  it('reconnects after a drop, ensuring again and showing the reason', async () => {
    await connection.connect();
    await until(() => connection.status.phase === 'connected', 'connected');
    server.sessions[0].socket.send(outputFrame('before\r\n'));
    await until(() => sink.output === 'before\r\n', 'first output');

    server.sessions[0].socket.close(1011, 'workspace container stopped');
    await until(() => server.sessions.length === 2, 'second session');
    await until(() => connection.status.phase === 'connected', 'reconnected');
    const waiting = statuses.find(s => s.phase === 'waiting')!;
    expect(waiting.message).toContain('workspace container stopped');
    expect(waiting.message).toContain('Reconnecting in');
    expect(waiting.canRetry).toBe(true);
    const ensures = server.requests.filter(r => r.url.endsWith('/ensure'));
    expect(ensures).toHaveLength(2);
    // The new session gets its own handshake; the screen is reset on repaint.
    await until(() => server.sessions[1].frames.length > 0, 'second handshake');
    expect(JSON.parse(server.sessions[1].frames[0]).AuthToken).toBe('');
    server.sessions[1].socket.send(outputFrame('after'));
    await until(() => sink.output === 'after', 'output after reconnect');
    expect(sink.resets).toBe(1);
  });

  it('does not reconnect when the shell exits; Enter starts a new one', async () => {
    await connection.connect();
    await until(() => connection.status.phase === 'connected', 'connected');
    server.sessions[0].socket.close(1000);
    await until(() => connection.status.phase === 'closed', 'closed');
    expect(connection.status.message).toBe(
      'The shell exited. Press Enter or Reconnect to start a new one.'
    );
    expect(server.sessions).toHaveLength(1);
    connection.send('\r');
    await until(() => server.sessions.length === 2, 'new session');
    await until(
      () => connection.status.phase === 'connected',
      'connected again'
    );
  });

  it('reconnects after a clean close when the container stopped', async () => {
    await connection.connect();
    await until(() => connection.status.phase === 'connected', 'connected');
    containerStatus = 'exited';
    server.sessions[0].socket.close(1000, 'workspace terminal session ended');
    await until(() => server.sessions.length === 2, 'second session');
    await until(() => connection.status.phase === 'connected', 'reconnected');
    const waiting = statuses.find(s => s.phase === 'waiting')!;
    expect(waiting.message).toContain(
      'workspace terminal session ended (container exited)'
    );
    expect(phases).not.toContain('closed');
  });

  it('shows a refusal and stays closed', async () => {
    await connection.connect();
    await until(() => connection.status.phase === 'connected', 'connected');
    server.sessions[0].socket.close(1008, 'not your workspace');
    await until(() => connection.status.phase === 'closed', 'closed');
    expect(connection.status.message).toBe('Disconnected: not your workspace.');
  });

  it('does not reconnect by itself after 1008 or 1007; the user can', async () => {
    const TOO_MANY =
      'this workspace already has 8 terminals open (limit 8); close one first';
    for (const [code, reason] of [
      [1008, TOO_MANY],
      [1007, 'the handshake is not a JSON object']
    ] as const) {
      const before = server.sessions.length;
      await connection.connect();
      await until(() => server.sessions.length === before + 1, 'session');
      await until(() => connection.status.phase === 'connected', 'connected');
      server.sessions[before].socket.close(code, reason);
      await until(() => connection.status.phase === 'closed', 'closed');
      expect(connection.status).toEqual({
        phase: 'closed',
        message: `Disconnected: ${reason}.`,
        canRetry: true
      });
      // Several backoff delays later, still no new attempt.
      await new Promise(resolve => setTimeout(resolve, 100));
      expect(server.sessions).toHaveLength(before + 1);
      expect(phases).not.toContain('waiting');
    }
    // The Reconnect button (and nothing else) made the second connection.
    expect(server.requests.filter(r => r.url.endsWith('/ensure'))).toHaveLength(
      2
    );
  });

  it('retries a 1011 with backoff but only a few times, then shows the reason', async () => {
    const ENGINE_DOWN = 'the Docker engine is not reachable; try again later';
    await connection.connect();
    await until(() => connection.status.phase === 'connected', 'connected');
    // From now on every new session is refused the same way.
    server.onSession = session => session.socket.close(1011, ENGINE_DOWN);
    server.sessions[0].socket.close(1011, ENGINE_DOWN);
    await until(() => connection.status.phase === 'failed', 'gave up');
    expect(connection.status.message).toBe(
      `Connection lost: ${ENGINE_DOWN}. Gave up after ${SERVER_ERROR_ATTEMPTS} attempts.`
    );
    expect(connection.status.canRetry).toBe(true);
    expect(server.sessions).toHaveLength(1 + SERVER_ERROR_ATTEMPTS);
    const waiting = statuses.filter(s => s.phase === 'waiting');
    expect(waiting).toHaveLength(SERVER_ERROR_ATTEMPTS);
    expect(waiting[0].message).toContain(
      `(attempt 1 of ${SERVER_ERROR_ATTEMPTS})`
    );

    // Retry starts over with the full budget and works once the engine is back.
    server.onSession = () => undefined;
    await connection.connect();
    await until(() => connection.status.phase === 'connected', 'connected');
  });

  it('stops retrying at once when the quota refuses the reconnect', async () => {
    const QUOTA =
      'You already have 5 running workspaces, the most this server allows (5). Stop or delete one first.';
    await connection.connect();
    await until(() => connection.status.phase === 'connected', 'connected');
    ensureAnswer = () => ({ status: 403, body: { message: QUOTA } });
    server.sessions[0].socket.close(1011, QUOTA.slice(0, 100));
    await until(() => connection.status.phase === 'failed', 'failed');
    expect(connection.status).toEqual({
      phase: 'failed',
      message: `Could not open the terminal: ${QUOTA}`,
      canRetry: true
    });
    expect(server.requests.filter(r => r.url.endsWith('/ensure'))).toHaveLength(
      2
    );
    expect(server.sessions).toHaveLength(1);
  });

  it("shows the quota's message when the first ensure is refused", async () => {
    const QUOTA =
      'You already have 1 running workspaces, the most this server allows (1). Stop or delete one first.';
    ensureAnswer = () => ({ status: 403, body: { message: QUOTA } });
    await connection.connect();
    expect(connection.status).toEqual({
      phase: 'failed',
      message: `Could not open the terminal: ${QUOTA}`,
      canRetry: true
    });
    expect(server.sessions).toHaveLength(0);
  });

  it('stays still while suspended (a stop on purpose) until asked to connect', async () => {
    await connection.connect();
    await until(() => connection.status.phase === 'connected', 'connected');
    const socket = server.sessions[0].socket;
    connection.suspend('Stopping the workspace…', false);
    expect(connection.status).toEqual({
      phase: 'closed',
      message: 'Stopping the workspace…',
      canRetry: false
    });
    await until(() => socket.readyState === socket.CLOSED, 'socket closed');
    connection.send('\r'); // no Enter-to-reconnect while stopping
    await new Promise(resolve => setTimeout(resolve, 100));
    expect(server.sessions).toHaveLength(1);
    connection.suspend('The workspace is stopped.');
    expect(connection.status.canRetry).toBe(true);
    await connection.connect(); // Reconnect: ensure starts it again
    await until(() => connection.status.phase === 'connected', 'reconnected');
    expect(server.requests.filter(r => r.url.endsWith('/ensure'))).toHaveLength(
      2
    );
  });

  it('reports a deleted workspace without offering a retry', async () => {
    server.route = () => ({
      status: 404,
      body: { message: 'Workspace not found' }
    });
    await connection.connect();
    expect(connection.status).toEqual({
      phase: 'failed',
      message: 'This workspace no longer exists.',
      canRetry: false
    });
    expect(server.sessions).toHaveLength(0);
  });

  it("shows the server's error with a retry on the first connect", async () => {
    ensureAnswer = () => ({
      status: 503,
      body: { message: 'The Docker engine is unreachable.' }
    });
    await connection.connect();
    expect(connection.status.phase).toBe('failed');
    expect(connection.status.message).toBe(
      'Could not open the terminal: The Docker engine is unreachable.'
    );
    expect(connection.status.canRetry).toBe(true);

    ensureAnswer = () => ({ status: 200, body: { status: 'started' } });
    await connection.connect(); // the Retry button
    await until(() => connection.status.phase === 'connected', 'connected');
  });

  it('keeps retrying server errors while reconnecting, then gives up', async () => {
    make(
      new ReconnectPolicy({
        initialDelay: 5,
        maxDelay: 10,
        jitter: 0,
        maxAttempts: 3
      })
    );
    await connection.connect();
    await until(() => connection.status.phase === 'connected', 'connected');
    ensureAnswer = () => ({
      status: 500,
      body: { status: 'error', message: 'boom' }
    });
    server.sessions[0].socket.terminate(); // abnormal close: 1006
    await until(() => connection.status.phase === 'failed', 'gave up');
    expect(connection.status.message).toBe(
      'Connection lost: boom. Gave up after 3 attempts.'
    );
    const ensures = server.requests.filter(r => r.url.endsWith('/ensure'));
    expect(ensures).toHaveLength(1 + 3);
    expect(phases.filter(p => p === 'waiting')).toHaveLength(3);
  });

  it('reports a workspace without a container', async () => {
    ensureAnswer = () => ({ status: 200, body: { status: 'no_container' } });
    await connection.connect();
    expect(connection.status.phase).toBe('failed');
    expect(connection.status.message).toBe(
      'Could not open the terminal: This workspace has no container.'
    );
  });

  it('sends ttyd pause and resume around a burst the terminal has not rendered', async () => {
    const pending: (() => void)[] = [];
    sink.write = (text, rendered) => {
      sink.output += text;
      pending.push(rendered);
    };
    await connection.connect();
    await until(() => connection.status.phase === 'connected', 'connected');
    const chunk = Buffer.alloc(256 * 1024, 'x');
    for (let i = 0; i < 3; i++) {
      server.sessions[0].socket.send(outputFrame(chunk));
    }
    await until(() => pending.length === 3, 'three writes');
    await until(() => server.sessions[0].frames.includes('2'), 'pause');
    pending.splice(0).forEach(done => done());
    await until(() => server.sessions[0].frames.includes('3'), 'resume');
    expect(server.sessions[0].frames.filter(f => f === '2')).toHaveLength(1);
  });

  it('stops everything on dispose', async () => {
    await connection.connect();
    await until(() => connection.status.phase === 'connected', 'connected');
    const socket = server.sessions[0].socket;
    connection.dispose();
    await until(() => socket.readyState === socket.CLOSED, 'socket closed');
    expect(connection.isDisposed).toBe(true);
  });
});
