// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Client of the server extension's REST API (`api/code/workspaces`).
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * Docker states of a workspace's container, plus the server's own two.
 */
export type ContainerStatus =
  | 'running'
  | 'exited'
  | 'paused'
  | 'created'
  | 'restarting'
  | 'dead'
  | 'missing'
  | 'unknown';

/**
 * A workspace as the server sends it.
 */
export interface IWorkspace {
  id: string;
  name: string;
  repo: string;
  branch: string;
  starred: boolean;
  container_name: string | null;
  created_at: string;
  updated_at: string;
  container?: { status: ContainerStatus };
}

/**
 * What a create request carries.
 */
export interface IWorkspaceSpec {
  name: string;
  repo: string;
  branch: string;
}

/**
 * The fields a validation error can point at.
 */
export type WorkspaceField = keyof IWorkspaceSpec;

/**
 * Outcome of `ensure`.
 */
export interface IEnsureResult {
  status: 'running' | 'started' | 'created' | 'no_container';
  message?: string;
}

const API_PATH = 'api/code/workspaces';
const WS_PATH = 'api/ws/code';

/**
 * A non-2xx answer, carrying the server's `message` and, for validation
 * errors, the `field` it is about.
 */
export class WorkspaceRequestError extends ServerConnection.ResponseError {
  constructor(
    response: Response,
    message: string,
    readonly field: WorkspaceField | null = null
  ) {
    super(response, message);
    this.name = 'WorkspaceRequestError';
  }

  /**
   * The HTTP status of the answer.
   */
  get status(): number {
    return this.response.status;
  }
}

/**
 * Turn a non-2xx response into an error with the best message available.
 */
export async function responseError(
  response: Response
): Promise<WorkspaceRequestError> {
  const text = await response.text().catch(() => '');
  let message = '';
  let field: WorkspaceField | null = null;
  try {
    const body = JSON.parse(text);
    if (body && typeof body === 'object') {
      message = String(body.message || body.reason || '');
      if (['name', 'repo', 'branch'].includes(body.field)) {
        field = body.field as WorkspaceField;
      }
    }
  } catch {
    // Not JSON (e.g. a proxy's HTML error page): fall through to the status.
  }
  if (!message) {
    message =
      `The server answered ${response.status} ${response.statusText}`.trim();
  }
  return new WorkspaceRequestError(response, message, field);
}

/**
 * Make a request to the workspaces API and parse its JSON answer.
 *
 * @throws WorkspaceRequestError on a non-2xx answer,
 * ServerConnection.NetworkError when the server cannot be reached.
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit,
  settings: ServerConnection.ISettings
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_PATH, endPoint);
  const response = await ServerConnection.makeRequest(url, init, settings);
  if (!response.ok) {
    throw await responseError(response);
  }
  if (response.status === 204) {
    return undefined as T;
  }
  return (await response.json()) as T;
}

/**
 * Typed calls of the workspaces API.
 */
export class WorkspacesClient {
  constructor(
    readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  async list(): Promise<IWorkspace[]> {
    const body = await requestAPI<{ workspaces: IWorkspace[] }>(
      '',
      { method: 'GET' },
      this.serverSettings
    );
    return body.workspaces;
  }

  create(spec: IWorkspaceSpec): Promise<IWorkspace> {
    return requestAPI<IWorkspace>(
      '',
      { method: 'POST', body: JSON.stringify(spec) },
      this.serverSettings
    );
  }

  get(id: string): Promise<IWorkspace> {
    return requestAPI<IWorkspace>(
      encodeURIComponent(id),
      { method: 'GET' },
      this.serverSettings
    );
  }

  rename(id: string, name: string): Promise<IWorkspace> {
    return requestAPI<IWorkspace>(
      encodeURIComponent(id),
      { method: 'PATCH', body: JSON.stringify({ name }) },
      this.serverSettings
    );
  }

  toggleStar(id: string): Promise<IWorkspace> {
    return requestAPI<IWorkspace>(
      `${encodeURIComponent(id)}/star`,
      { method: 'POST' },
      this.serverSettings
    );
  }

  async remove(id: string): Promise<void> {
    await requestAPI<void>(
      encodeURIComponent(id),
      { method: 'DELETE' },
      this.serverSettings
    );
  }

  ensure(id: string): Promise<IEnsureResult> {
    return requestAPI<IEnsureResult>(
      `${encodeURIComponent(id)}/ensure`,
      { method: 'POST' },
      this.serverSettings
    );
  }

  /**
   * URL of the terminal relay of a workspace.
   *
   * Like JupyterLab's kernel and terminal sockets, it carries the token only
   * when the settings say so: a browser on the server's own host is
   * authenticated by its cookie, and a WebSocket cannot send headers.
   */
  terminalUrl(id: string): string {
    const settings = this.serverSettings;
    let url = URLExt.join(settings.wsUrl, WS_PATH, encodeURIComponent(id));
    if (settings.appendToken && settings.token) {
      url += `?token=${encodeURIComponent(settings.token)}`;
    }
    return url;
  }
}
