// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Start a real JupyterLab server with the extension, on a free port, under a
 * base_url prefix, with a fresh workspace store and settings; stop it (and
 * delete the workspaces it has left) afterwards. global-setup.ts starts the
 * one most tests share; a test that needs other server options (a quota)
 * starts its own.
 */

import { spawn } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForServer(
  url: string,
  headers: Record<string, string>,
  exited: () => string | null
): Promise<void> {
  const deadline = Date.now() + 120_000;
  let last = '';
  while (Date.now() < deadline) {
    const failure = exited();
    if (failure) {
      throw new Error(`Jupyter server failed during startup: ${failure}`);
    }
    try {
      const response = await fetch(url, { headers });
      if (response.ok) {
        return;
      }
      last = `${response.status} ${await response.text()}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise(resolve => setTimeout(resolve, 250));
  }
  throw new Error(`Jupyter server did not answer ${url}: ${last}`);
}

/**
 * A running test server.
 */
export interface ITestServer {
  /** `http://127.0.0.1:<port><basePath>` */
  baseUrl: string;
  token: string;
  logPath: string;
  /** Delete what the tests left, stop the server, keep its log as `logName`. */
  stop(): Promise<void>;
}

export interface IServerOptions {
  /** The base_url prefix, e.g. `/popebot-ui-test/`. */
  basePath: string;
  /** Extra command-line options (e.g. a quota). */
  args?: string[];
  /** Name of the server log's copy in test-artifacts/ui/. */
  logName: string;
  /** More environment variables (e.g. an Auth.js secret). */
  env?: Record<string, string>;
  /**
   * Headers that authenticate the readiness check and the clean-up; default:
   * the server's own token. A server with another identity provider passes its
   * own (and cleans up per user itself when there is no single one).
   */
  headers?: Record<string, string>;
}

export async function startServer(
  options: IServerOptions
): Promise<ITestServer> {
  const { basePath } = options;
  const jupyter = process.env.JUPYTER || 'jupyter';
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'popebot-ui-'));
  const root = path.join(tmp, 'root');
  fs.mkdirSync(root);
  const logPath = path.join(tmp, 'server.log');
  const log = fs.openSync(logPath, 'w');

  const args = [
    'lab',
    '--no-browser',
    // CI and this machine run as root.
    '--allow-root',
    '--ServerApp.ip=127.0.0.1',
    `--ServerApp.port=${port}`,
    '--ServerApp.port_retries=0',
    `--ServerApp.base_url=${basePath}`,
    `--IdentityProvider.token=${token}`,
    `--ServerApp.root_dir=${root}`,
    `--CodeWorkspacesApp.db_path=${path.join(tmp, 'workspaces.sqlite')}`,
    `--LabApp.user_settings_dir=${path.join(tmp, 'settings')}`,
    `--LabApp.workspaces_dir=${path.join(tmp, 'lab-workspaces')}`,
    // The tests open the settings editor through the app's commands.
    '--LabApp.expose_app_in_browser=True',
    ...(options.args ?? [])
  ];
  // run.sh makes an internal network (no route out) for the workspace containers.
  if (process.env.POPEBOT_UI_NETWORK) {
    args.push(`--ContainerManager.network=${process.env.POPEBOT_UI_NETWORK}`);
  }
  // JupyterLab's "get news?" prompt would cover the terminal in screenshots.
  const labConfig = path.join(tmp, 'config', 'labconfig');
  fs.mkdirSync(labConfig, { recursive: true });
  fs.writeFileSync(
    path.join(labConfig, 'page_config.json'),
    JSON.stringify({
      disabledExtensions: {
        '@jupyterlab/apputils-extension:announcements': true
      }
    })
  );
  const server = spawn(jupyter, args, {
    cwd: root,
    detached: true,
    stdio: ['ignore', log, log],
    env: {
      ...process.env,
      ...(options.env ?? {}),
      JUPYTER_CONFIG_DIR: path.join(tmp, 'config'),
      JUPYTER_RUNTIME_DIR: path.join(tmp, 'runtime')
    }
  });
  const headers = options.headers ?? { Authorization: `token ${token}` };
  let exitStatus: string | null = null;
  server.on('exit', (code, signal) => {
    exitStatus = `code ${code} signal ${signal}; log: ${logPath}`;
  });
  server.on('error', error => {
    exitStatus = `${error}; log: ${logPath}`;
  });

  const baseUrl = `http://127.0.0.1:${port}${basePath}`;
  try {
    await waitForServer(`${baseUrl}api/code/workspaces`, headers, () => {
      if (exitStatus) {
        return exitStatus;
      }
      // The server keeps running without the extension (its API then 404s
      // forever): stop waiting at once and say why.
      const failed = fs
        .readFileSync(logPath, 'utf8')
        .match(/jupyter_popebot_code \| extension failed loading.*/);
      return failed ? `${failed[0]}; log: ${logPath}` : null;
    });
  } catch (error) {
    process.stderr.write(fs.readFileSync(logPath, 'utf8').slice(-4000));
    try {
      process.kill(-server.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
    throw error;
  }

  const stop = async () => {
    // Remove what the tests left: containers and volumes go with the workspaces.
    try {
      const listed = await fetch(`${baseUrl}api/code/workspaces`, { headers });
      const { workspaces } = (await listed.json()) as {
        workspaces: { id: string }[];
      };
      for (const { id } of workspaces) {
        await fetch(`${baseUrl}api/code/workspaces/${id}`, {
          method: 'DELETE',
          headers
        });
      }
    } finally {
      if (exitStatus === null) {
        const stopped = new Promise(resolve => server.once('exit', resolve));
        process.kill(-server.pid!, 'SIGTERM');
        await Promise.race([
          stopped,
          new Promise(resolve => setTimeout(resolve, 20_000))
        ]);
        if (exitStatus === null) {
          process.kill(-server.pid!, 'SIGKILL');
        }
      }
      fs.closeSync(log);
      const artifacts = path.resolve(
        __dirname,
        '..',
        '..',
        'test-artifacts',
        'ui'
      );
      fs.mkdirSync(artifacts, { recursive: true });
      fs.copyFileSync(logPath, path.join(artifacts, options.logName));
      if (!process.env.POPEBOT_KEEP_SERVER_DIR) {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    }
  };
  return { baseUrl, token, logPath, stop };
}
