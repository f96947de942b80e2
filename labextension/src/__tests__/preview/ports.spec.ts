// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

import {
  absolutePreviewUrl,
  isPort,
  previewUrlFromTemplate,
  WorkspacesClient
} from '../../api';
import { parsePortInput, PortsModel } from '../../preview/ports';
import { WorkspaceListModel } from '../../workspaces/model';
import type { IAnswer, IRecordedRequest } from '../wireserver';
import { WireServer } from '../wireserver';

const workspace = (id: string, status: string) => ({
  id,
  name: `name-${id}`,
  repo: '',
  branch: '',
  starred: false,
  container_name: `code-workspace-${id}`,
  created_at: '2026-01-01T00:00:00+00:00',
  updated_at: '2026-01-01T00:00:00+00:00',
  container: { status }
});

const TEMPLATE = (id: string) => `/base/code/preview/${id}/k3y/{port}/`;

const portList = (id: string, status: string, ports: number[]) => ({
  status,
  ports: ports.map(port => ({
    port,
    address: port === 5000 ? '127.0.0.1' : '0.0.0.0',
    reachable: port !== 5000,
    url: `/base/code/preview/${id}/k3y/${port}/`
  })),
  truncated: false,
  url_template: TEMPLATE(id)
});

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/**
 * Wait until `check` holds (polls every 10 ms, fails after `timeout`).
 */
async function until(check: () => boolean, timeout = 3000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error('condition not met in time');
    }
    await sleep(10);
  }
}

describe('preview URLs', () => {
  it('puts the port into the template, everywhere it appears', () => {
    expect(previewUrlFromTemplate('/b/code/preview/w/k/{port}/', 8000)).toBe(
      '/b/code/preview/w/k/8000/'
    );
    expect(
      previewUrlFromTemplate('https://p-{port}.example.test/?p={port}', 3000)
    ).toBe('https://p-3000.example.test/?p=3000');
  });

  it('refuses ports out of range and templates without a placeholder', () => {
    for (const port of [0, -1, 65536, 80.5, NaN]) {
      expect(() => previewUrlFromTemplate('/x/{port}/', port)).toThrow(
        /Not a TCP port/
      );
    }
    expect(() => previewUrlFromTemplate('/x/8000/', 8000)).toThrow(/\{port\}/);
    expect(previewUrlFromTemplate('/x/{port}/', 1)).toBe('/x/1/');
    expect(previewUrlFromTemplate('/x/{port}/', 65535)).toBe('/x/65535/');
  });

  it('knows a port when it sees one', () => {
    expect([1, 80, 65535].map(isPort)).toEqual([true, true, true]);
    expect([0, 65536, 1.5, '80', null].map(isPort)).toEqual([
      false,
      false,
      false,
      false,
      false
    ]);
  });

  it('makes a path absolute on the server and keeps a host-mode URL', () => {
    const base = 'http://127.0.0.1:8888/prefix/';
    expect(absolutePreviewUrl('/prefix/code/preview/w/k/80/', base)).toBe(
      'http://127.0.0.1:8888/prefix/code/preview/w/k/80/'
    );
    expect(absolutePreviewUrl('https://80-w.preview.test/', base)).toBe(
      'https://80-w.preview.test/'
    );
  });

  it('never lets a script URL through', () => {
    const base = 'http://127.0.0.1:8888/';
    for (const url of [
      'javascript:alert(1)',
      ' JavaScript:alert(1)',
      'data:text/html,<script>alert(1)</script>',
      'file:///etc/passwd'
    ]) {
      expect(() => absolutePreviewUrl(url, base)).toThrow(/Not a web address/);
    }
  });
});

describe('parsePortInput', () => {
  it('reads the ports people type', () => {
    expect(parsePortInput('8000')).toEqual({ port: 8000 });
    expect(parsePortInput('  3000 ')).toEqual({ port: 3000 });
    expect(parsePortInput('1')).toEqual({ port: 1 });
    expect(parsePortInput('65535')).toEqual({ port: 65535 });
    expect(parsePortInput('08080')).toEqual({ port: 8080 });
  });

  it('says what is wrong with the rest', () => {
    expect(parsePortInput('')).toEqual({ problem: 'empty' });
    expect(parsePortInput('   ')).toEqual({ problem: 'empty' });
    for (const text of ['80a', '8e3', '-1', '+80', '0x50', '80.0', '8 0']) {
      expect(parsePortInput(text)).toEqual({ problem: 'notANumber' });
    }
    for (const text of ['0', '65536', '99999999999999999999999']) {
      expect(parsePortInput(text)).toEqual({ problem: 'outOfRange' });
    }
  });
});

describe('PortsModel', () => {
  let server: WireServer;
  let list: WorkspaceListModel;
  let ports: PortsModel;
  let states: Record<string, string>;
  let listening: Record<string, number[]>;
  /** Answer of the ports endpoint instead of the default, per workspace. */
  let override: ((id: string) => IAnswer | Promise<IAnswer> | null) | null;
  let inFlight: number;
  let maxInFlight: number;

  const portReads = (id?: string) =>
    server.requests.filter(
      r =>
        r.url.endsWith('/ports') &&
        (id === undefined || r.url === `/base/api/code/workspaces/${id}/ports`)
    ).length;

  beforeEach(async () => {
    server = new WireServer();
    await server.start();
    states = { run: 'running', off: 'exited' };
    listening = { run: [5000, 8000], off: [] };
    override = null;
    inFlight = 0;
    maxInFlight = 0;
    server.route = async (request: IRecordedRequest) => {
      const match = request.url.match(/workspaces\/([^/]+)\/ports$/);
      if (!match) {
        return {
          status: 200,
          body: {
            workspaces: Object.entries(states).map(([id, s]) =>
              workspace(id, s)
            )
          }
        };
      }
      const id = decodeURIComponent(match[1]);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        const special = override?.(id);
        if (special) {
          return await special;
        }
        await sleep(5);
        return {
          status: 200,
          body: portList(id, states[id] ?? 'missing', listening[id] ?? [])
        };
      } finally {
        inFlight--;
      }
    };
    list = new WorkspaceListModel(new WorkspacesClient(server.settings()));
    ports = new PortsModel(list, { refreshInterval: 40 });
    await list.refresh();
  });

  afterEach(async () => {
    ports.dispose();
    list.dispose();
    await server.stop();
  });

  it('asks the ports endpoint of the workspace, id encoded', async () => {
    const client = new WorkspacesClient(server.settings());
    await expect(client.ports('a/b')).resolves.toEqual(
      portList('a/b', 'missing', [])
    );
    expect(server.requests.at(-1)!.method).toBe('GET');
    expect(server.requests.at(-1)!.url).toBe(
      '/base/api/code/workspaces/a%2Fb/ports'
    );
  });

  it('reads nothing while the sidebar is hidden', async () => {
    await sleep(200);
    expect(portReads()).toBe(0);
    expect(ports.get('run')).toBeNull();
  });

  it('reads the running workspaces every few moments while visible, then stops when hidden', async () => {
    ports.visible = true;
    await until(() => portReads('run') >= 3);
    expect(portReads('off')).toBe(0);
    expect(ports.get('run')).toEqual({
      status: 'running',
      ports: portList('run', 'running', [5000, 8000]).ports,
      truncated: false,
      urlTemplate: TEMPLATE('run'),
      error: null
    });
    expect(ports.get('off')).toBeNull();

    ports.visible = false;
    await until(() => !ports.reading);
    const after = portReads();
    await sleep(250);
    expect(portReads()).toBe(after);
  });

  it('tells the sidebar when the ports change, and only then', async () => {
    let changes = 0;
    ports.changed.connect(() => changes++);
    ports.visible = true;
    await until(() => ports.get('run') !== null);
    const first = changes;
    expect(first).toBe(1);
    await until(() => portReads('run') >= 4);
    expect(changes).toBe(first);
    listening.run = [8000, 9000];
    await until(() => changes > first);
    expect(ports.get('run')!.ports.map(p => p.port)).toEqual([8000, 9000]);
  });

  it('never has two readings of the ports at once, however often asked', async () => {
    let release: () => void = () => undefined;
    override = () =>
      new Promise<IAnswer>(resolve => {
        release = () =>
          resolve({
            status: 200,
            body: portList('run', 'running', [8000])
          });
      });
    ports.visible = true;
    await until(() => inFlight === 1);
    // Asked again and again during the slow reading: one more reading after it.
    const refreshes = [ports.refresh(), ports.refresh(), ports.refresh()];
    await sleep(150); // several poll intervals pass too
    expect(portReads('run')).toBe(1);
    override = null;
    release();
    await Promise.all(refreshes);
    expect(portReads('run')).toBe(2);
    await until(() => portReads('run') >= 5);
    expect(maxInFlight).toBe(1);
  });

  it('stops reading a workspace that stops, and forgets its ports', async () => {
    ports.visible = true;
    await until(() => ports.get('run') !== null);
    states.run = 'exited';
    await list.refresh();
    expect(ports.get('run')).toBeNull();
    await until(() => !ports.reading);
    const after = portReads('run');
    await sleep(200);
    expect(portReads('run')).toBe(after);
  });

  it('starts reading a workspace that starts', async () => {
    ports.visible = true;
    await until(() => ports.get('run') !== null);
    states.off = 'running';
    listening.off = [3000];
    await list.refresh();
    await until(() => ports.get('off') !== null);
    expect(ports.get('off')!.ports.map(p => p.port)).toEqual([3000]);
  });

  it('says when the server listed only some of the ports', async () => {
    ports.visible = true;
    override = id => ({
      status: 200,
      body: { ...portList(id, 'running', [5000]), truncated: true }
    });
    await until(() => ports.get('run') !== null);
    expect(ports.get('run')!.truncated).toBe(true);
    expect(ports.get('run')!.ports.map(p => p.port)).toEqual([5000]);
    override = null;
    await until(() => ports.get('run')!.truncated === false);
  });

  it('keeps the last ports and records the error quietly when a reading fails', async () => {
    ports.visible = true;
    await until(() => ports.get('run') !== null);
    override = () => ({
      status: 503,
      body: { message: 'The Docker engine is not reachable.' }
    });
    await until(() => ports.get('run')!.error !== null);
    expect(ports.get('run')).toEqual({
      status: 'running',
      ports: portList('run', 'running', [5000, 8000]).ports,
      truncated: false,
      urlTemplate: TEMPLATE('run'),
      error: 'The Docker engine is not reachable.'
    });
    override = null;
    await until(() => ports.get('run')!.error === null, 5000);
  });

  it('reads a watched workspace even while hidden or stopped, until unwatched', async () => {
    const handle = ports.watch('off');
    await until(() => portReads('off') >= 2);
    expect(ports.get('off')!.status).toBe('exited');
    expect(portReads('run')).toBe(0); // hidden: not the running ones
    handle.dispose();
    handle.dispose(); // twice is harmless
    expect(ports.get('off')).toBeNull();
    await until(() => !ports.reading);
    const after = portReads();
    await sleep(200);
    expect(portReads()).toBe(after);
  });

  it('finds preview URLs: the listed one, else from the template', async () => {
    ports.visible = true;
    await until(() => ports.get('run') !== null);
    const before = portReads();
    await expect(ports.previewUrl('run', 8000)).resolves.toBe(
      '/base/code/preview/run/k3y/8000/'
    );
    await expect(ports.previewUrl('run', 4321)).resolves.toBe(
      '/base/code/preview/run/k3y/4321/'
    );
    expect(portReads()).toBe(before);
    // A workspace never read: its template is asked for first.
    await expect(ports.previewUrl('off', 8000)).resolves.toBe(
      '/base/code/preview/off/k3y/8000/'
    );
    expect(portReads('off')).toBe(1);
    await expect(ports.previewUrl('off', 70000)).rejects.toThrow(
      /Not a TCP port/
    );
  });
});
