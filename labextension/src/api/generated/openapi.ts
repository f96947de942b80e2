// Generated from docs/openapi.yaml by labextension/scripts/openapi.mjs.
// Do not edit: change the YAML and run `jlpm build:openapi` in labextension/.
/* eslint-disable */
export interface paths {
  '/api/code/workspaces': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * The caller's workspaces, starred first, then most recently updated.
     * @description With all=true (administrators only: CodeWorkspacesApp.admin_users and JupyterHub admins) every owner's workspaces, ordered by owner, each with an `owner` field; anyone else gets 403 for all=true.
     */
    get: operations['listWorkspaces'];
    put?: never;
    /** Create a workspace; its container is created and started (all or nothing). */
    post: operations['createWorkspace'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/api/code/profiles': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * The workspace profiles the caller may use (CodeWorkspacesApp.profiles).
     * @description In the operator's order; empty when the server offers no profiles (every workspace then runs ContainerManager.image). A profile restricted by allowed_users / allowed_groups is listed only to the people and JupyterHub groups it names.
     */
    get: operations['listProfiles'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/api/code/workspaces/{id}': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
      };
      cookie?: never;
    };
    /** One workspace with its container's status. */
    get: operations['getWorkspace'];
    put?: never;
    post?: never;
    /**
     * Delete a workspace, its container and (unless configured to keep it) its volume.
     * @description The owner, or an administrator for anyone's workspace.
     */
    delete: operations['deleteWorkspace'];
    options?: never;
    head?: never;
    /** Rename a workspace. */
    patch: operations['renameWorkspace'];
    trace?: never;
  };
  '/api/code/workspaces/{id}/star': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
      };
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Toggle the workspace's star. */
    post: operations['toggleStar'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/api/code/workspaces/{id}/ensure': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
      };
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Bring the workspace's container up (start, unpause or recreate on the same volume). */
    post: operations['ensureContainer'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/api/code/workspaces/{id}/stop': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
      };
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * Stop the workspace's container; its files, container and volume stay.
     * @description The processes in the workspace end (SIGTERM, then SIGKILL after ContainerManager.stop_timeout); the next ensure or terminal starts it again. Stopping a stopped workspace is not an error. The owner, or an administrator for anyone's workspace. The server also stops workspaces by itself after CodeWorkspacesApp.idle_timeout seconds without activity.
     */
    post: operations['stopContainer'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/api/code/workspaces/{id}/ports': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
      };
      cookie?: never;
    };
    /**
     * The TCP ports the workspace listens on, each with the URL of its preview.
     * @description Read from the container's /proc/net/tcp and tcp6 (listening sockets), so it shows what really listens; ttyd's own port is left out. Never starts anything: a workspace that is not running answers with its status and no ports. A port bound only to the container's loopback (127.0.0.1, ::1) cannot be reached by the preview and is listed with `reachable: false` (start the server on 0.0.0.0). `url_template` is the preview URL of any port (replace `{port}`); opening a preview of a stopped workspace starts it first. At most ContainerManager.max_listed_ports ports are listed (`truncated` says when more listen), and the listing may be up to ContainerManager.ports_cache_seconds old. The owner, or an administrator.
     */
    get: operations['listPorts'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/api/code/secrets': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * The caller's personal secrets, by name; never a value.
     * @description Each one is an environment variable of the caller's workspace shells; one with a `git_host` is also the password git uses for that host. Only the owner sees their own.
     */
    get: operations['listSecrets'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/api/code/secrets/{name}': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        name: components['schemas']['SecretName'];
      };
      cookie?: never;
    };
    get?: never;
    /**
     * Add or replace one of the caller's personal secrets.
     * @description Encrypted at rest; written into the caller's running workspaces at once (new shells see it within seconds) and into each of them at every start. The answer never holds the value.
     */
    put: operations['putSecret'];
    post?: never;
    /** Delete one of the caller's personal secrets (gone from new shells at once). */
    delete: operations['deleteSecret'];
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/code/preview/{id}/{key}/{port}/{path}': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
        /** @description The preview key of this owner and workspace (from listPorts' URLs). */
        key: string;
        port: number;
        path: string;
      };
      cookie?: never;
    };
    /**
     * A web app running in the workspace (HTTP, any method, and WebSocket upgrades).
     * @description Streams requests and responses both ways with backpressure. The path after the port is sent to the app without the prefix (X-Forwarded-Prefix tells the prefix; redirects to the app itself or to absolute paths are rewritten into the preview); `/code/preview-absolute/...` sends the whole path, for dev servers started with a base path (e.g. `vite --base`). Every response carries `Content-Security-Policy: sandbox ...` without allow-same-origin, so the page runs in an opaque origin: it cannot read the Jupyter server's cookies or XSRF token nor call its API as the user; the app's own Set-Cookie headers are dropped, and the browser's Cookie and Authorization headers are never sent to the app. A request with a Jupyter identity must be the owner's or an admin's; one without (the sandboxed page's own subresources, fetch and WebSockets, which carry no cookies, and links followed inside a preview frame) is admitted by the key, except a top-level page load (Sec-Fetch-Mode navigate with Sec-Fetch-Dest other than iframe/frame, or no Sec-Fetch-Mode) and a WebSocket upgrade whose Origin is not `null` (Chromium sends no Sec-Fetch-Mode on WebSocket handshakes; the sandboxed page's socket has Origin null). Responses carry frame-ancestors 'self'. Requests with `Origin: null` get `Access-Control-Allow-Origin: null` when the app sent none, and their CORS preflights are answered by the server. Refused with 401 (a page load without an identity), 403 (a wrong key, someone else's workspace, a cross-site Origin, the running-workspace quota), 429 (the server-wide cap on running workspaces, CodeWorkspacesApp.max_running_workspaces), 502 (nothing listens on the port), 503 (the workspace cannot be started, or PreviewProxy.max_connections_per_workspace is reached; a WebSocket over it closes with 1008). Opening a preview of a stopped workspace starts it; counts as activity for idle_timeout.
     */
    get: operations['openPreview'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/api/ws/code/{id}': {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
      };
      cookie?: never;
    };
    /**
     * The workspace's terminal (WebSocket upgrade, subprotocol `tty`, ttyd's protocol).
     * @description Refused before the upgrade with 401 (no identity), 403 (unknown or someone else's
     *     workspace, or a cross-site Origin). The relay ensures the container, waits for ttyd, and
     *     fills in the handshake's AuthToken with the container's secret credential. Sizes in the
     *     handshake and resizes are cut to TerminalRelay.max_columns x max_rows. Close codes: 1000
     *     (the shell ended), 1001 (server shutting down), 1007 (a handshake or resize that is not a
     *     JSON object), 1008 (too many terminals open: TerminalRelay.max_connections_per_workspace
     *     or max_connections_per_user), 1011 (the workspace could not be reached; the reason says
     *     why, e.g. the engine is down or the running-workspace quota is reached), 4408 (the
     *     workspace was stopped after idle_timeout without activity; reconnecting starts it
     *     again, so a client should leave that to the user), 4409 (the workspace was stopped
     *     through the API; likewise).
     */
    get: operations['openTerminal'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
}
export type webhooks = Record<string, never>;
export interface components {
  schemas: {
    /** @description Printable characters; surrounding whitespace is trimmed. */
    Name: string;
    WorkspaceCreate: {
      name?: components['schemas']['Name'];
      /** @description Empty (no clone), owner/name (expanded by repo_url_template), user@host:path (ssh), or a URL with an allowed scheme (https, ssh, git by default). */
      repo?: string;
      /** @description Empty (default branch) or a name git check-ref-format --branch accepts. */
      branch?: string;
      /** @description Slug of a profile from GET api/code/profiles. Empty or absent: the default profile (the one marked default, else the first the caller may use); without profiles on the server it must be empty. Unknown: 400 with field "profile"; one the caller may not use: 403. */
      profile?: string | null;
    };
    Profile: {
      /** @example python */
      slug: string;
      /** @example Python data science */
      display_name: string;
      description: string;
      /** @example jupyter-popebot-code-python:latest */
      image: string;
      /** @description The limits the profile sets; the others are the server's defaults. */
      limits: {
        /** @example 2 */
        cpus?: number;
        /** @example 4g */
        memory?: string;
        /** @example 1024 */
        pids?: number;
        /** @example 20g */
        disk?: string;
      };
      default: boolean;
    };
    Workspace: {
      id: string;
      name: string;
      repo: string;
      branch: string;
      starred: boolean;
      /** @example code-workspace-abcdefghijklmnop */
      container_name: string | null;
      /** Format: date-time */
      created_at: string;
      /** Format: date-time */
      updated_at: string;
      /**
       * Format: date-time
       * @description Last terminal traffic; null until the terminal is first used.
       */
      last_used_at: string | null;
      /** @description Slug of the profile it was made with (its container is recreated from it); absent when it was made without one. */
      profile?: string;
    };
    WorkspaceWithStatus: components['schemas']['Workspace'] & {
      container: {
        /**
         * @description Docker's state, "missing", or "unknown" while Docker is unreachable.
         * @example running
         * @enum {string}
         */
        status:
          | 'created'
          | 'running'
          | 'paused'
          | 'restarting'
          | 'removing'
          | 'exited'
          | 'dead'
          | 'missing'
          | 'unknown';
      };
    };
    WorkspaceWithOwner: components['schemas']['WorkspaceWithStatus'] & {
      /** @description The owner's name (only in an all=true listing). */
      owner?: string;
    };
    Port: {
      port: number;
      /**
       * @description Address it is bound to in the container, e.g. 0.0.0.0, ::, 127.0.0.1.
       * @example 0.0.0.0
       */
      address: string;
      /** @description False when bound to the container's loopback only. */
      reachable: boolean;
      /** @description Where to open its preview (absolute path on this server, or a full URL in host mode). */
      url: string;
    };
    PortList: {
      /** @enum {string} */
      status:
        | 'created'
        | 'running'
        | 'paused'
        | 'restarting'
        | 'removing'
        | 'exited'
        | 'dead'
        | 'missing'
        | 'unknown';
      ports: components['schemas']['Port'][];
      /** @description True when more ports listen than are listed (a cap: ContainerManager.max_listed_ports, ports_read_bytes): the lowest ones are listed. */
      truncated: boolean;
      /** @description Preview URL of any port: replace {port}. */
      url_template: string;
    };
    /**
     * @description An environment variable name, not one the workspace needs (PATH, HOME, USER, TTYD_CREDENTIAL, LD_*, ...).
     * @example GH_TOKEN
     */
    SecretName: string;
    SecretPut: {
      /** @description At most 16 KiB (UTF-8), no NUL; one line without control characters when git_host is set. */
      value: string;
      /** @description A host name or address, with a port when not the default (github.com, git.internal:8443): git then uses the value as the password for https:// and http:// repositories on that host. */
      git_host?: string | null;
    };
    SecretInfo: {
      name: components['schemas']['SecretName'];
      git_host: string | null;
      /** Format: date-time */
      updated_at: string;
    };
    Error: {
      message: string;
      /** @description Which limit stopped the request, when one did: `owner_quota` (403, the caller's max_workspaces_per_user or max_running_workspaces_per_user), `server_capacity` (429, CodeWorkspacesApp.max_running_workspaces), `host_disk_full` (507, the Docker host's disk, or ContainerManager.disk_dir that holds the workspaces' disks), `server_disk_full` (507, the disk under the Jupyter server's workspace records). A workspace's own disk (ContainerManager.disk_limit) never fails a request: writes inside it fail with "No space left on device" for that workspace alone. Otherwise null, or the HTTP reason phrase of an error the server framework answered. */
      reason?: string | null;
      /** @description The input field at fault (400). */
      field?: string | null;
    };
    EnsureError: components['schemas']['Error'] & {
      /** @enum {string} */
      status: 'error';
    };
  };
  responses: {
    /** @description The body or a field is not acceptable. */
    BadInput: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description No authenticated caller. */
    Unauthenticated: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description No authenticated caller, the caller's quota is reached (max_workspaces_per_user, max_running_workspaces_per_user), or the caller may not use the profile asked for (or none at all); the message says which and what to do. */
    ForbiddenOrOverQuota: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description A disk is full (reason host_disk_full: the Docker host's, or the folder of the workspaces' disk images; reason server_disk_full: the Jupyter server's); the message says which, and that nothing was changed. Retry once an operator freed room. (From ensure, the body also has `status: error`.) */
    DiskFull: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description The server already runs as many workspaces as it allows, all users together (CodeWorkspacesApp.max_running_workspaces), or (creating a workspace, or starting one made on the shared network) every subnet of WorkspaceNetworks.pool is in use; the message says which. Retry when one stops, or is deleted. */
    ServerFull: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description No such workspace, or not the caller's. */
    NotFound: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description Docker refused the operation (for example, the image is missing). */
    DockerRefused: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description The Docker engine is unreachable; nothing was changed. */
    EngineUnreachable: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
  };
  parameters: {
    WorkspaceId: string;
  };
  requestBodies: never;
  headers: never;
  pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
  listWorkspaces: {
    parameters: {
      query?: {
        /** @description Every owner's workspaces (administrators only). */
        all?: 'true' | 'false';
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The list, each with its container's status (and owner with all=true). */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            workspaces: components['schemas']['WorkspaceWithOwner'][];
          };
        };
      };
      400: components['responses']['BadInput'];
      /** @description Not authenticated */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
    };
  };
  createWorkspace: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['WorkspaceCreate'];
      };
    };
    responses: {
      /** @description The new workspace. */
      201: {
        headers: {
          /** @description URL of the workspace. */
          Location?: string;
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Workspace'];
        };
      };
      400: components['responses']['BadInput'];
      403: components['responses']['ForbiddenOrOverQuota'];
      429: components['responses']['ServerFull'];
      500: components['responses']['DockerRefused'];
      503: components['responses']['EngineUnreachable'];
      507: components['responses']['DiskFull'];
    };
  };
  listProfiles: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The profiles. */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            profiles: components['schemas']['Profile'][];
          };
        };
      };
      403: components['responses']['Unauthenticated'];
    };
  };
  getWorkspace: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The workspace. */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['WorkspaceWithStatus'];
        };
      };
      403: components['responses']['Unauthenticated'];
      404: components['responses']['NotFound'];
      503: components['responses']['EngineUnreachable'];
    };
  };
  deleteWorkspace: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Deleted. A container that was already gone is fine. */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      403: components['responses']['Unauthenticated'];
      404: components['responses']['NotFound'];
      500: components['responses']['DockerRefused'];
      503: components['responses']['EngineUnreachable'];
    };
  };
  renameWorkspace: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': {
          name: components['schemas']['Name'];
        };
      };
    };
    responses: {
      /** @description The renamed workspace. */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Workspace'];
        };
      };
      400: components['responses']['BadInput'];
      403: components['responses']['Unauthenticated'];
      404: components['responses']['NotFound'];
    };
  };
  toggleStar: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The workspace with `starred` toggled. */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Workspace'];
        };
      };
      403: components['responses']['Unauthenticated'];
      404: components['responses']['NotFound'];
    };
  };
  ensureContainer: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description What was done. */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            /** @enum {string} */
            status: 'running' | 'started' | 'created' | 'no_container';
            message?: string;
          };
        };
      };
      403: components['responses']['ForbiddenOrOverQuota'];
      404: components['responses']['NotFound'];
      429: components['responses']['ServerFull'];
      /** @description Docker refused; nothing else changed. */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['EnsureError'];
        };
      };
      /** @description The Docker engine is unreachable. */
      503: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['EnsureError'];
        };
      };
      507: components['responses']['DiskFull'];
    };
  };
  stopContainer: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The container is stopped (or has no container). */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            /** @enum {string} */
            status: 'stopped' | 'no_container';
            message?: string;
          };
        };
      };
      403: components['responses']['Unauthenticated'];
      404: components['responses']['NotFound'];
      /** @description Docker refused; nothing else changed. */
      500: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['EnsureError'];
        };
      };
      /** @description The Docker engine is unreachable. */
      503: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['EnsureError'];
        };
      };
    };
  };
  listPorts: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The ports, lowest first. */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['PortList'];
        };
      };
      403: components['responses']['Unauthenticated'];
      404: components['responses']['NotFound'];
      500: components['responses']['DockerRefused'];
      503: components['responses']['EngineUnreachable'];
    };
  };
  listSecrets: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The caller's secrets, by name. */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            secrets: components['schemas']['SecretInfo'][];
          };
        };
      };
      403: components['responses']['Unauthenticated'];
    };
  };
  putSecret: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        name: components['schemas']['SecretName'];
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['SecretPut'];
      };
    };
    responses: {
      /** @description Replaced. */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['SecretInfo'];
        };
      };
      /** @description Added. */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['SecretInfo'];
        };
      };
      400: components['responses']['BadInput'];
      /** @description No authenticated caller, or the caller already has as many secrets as the server allows (PersonalSecrets.max_per_owner). */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Error'];
        };
      };
    };
  };
  deleteSecret: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        name: components['schemas']['SecretName'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Deleted. */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      400: components['responses']['BadInput'];
      403: components['responses']['Unauthenticated'];
      /** @description The caller has no secret of that name. */
      404: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Error'];
        };
      };
    };
  };
  openPreview: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
        /** @description The preview key of this owner and workspace (from listPorts' URLs). */
        key: string;
        port: number;
        path: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Whatever the app answers (any status). */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      401: components['responses']['Unauthenticated'];
      /** @description Not the caller's workspace */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      429: components['responses']['ServerFull'];
      /** @description Nothing in the workspace answers on that port. */
      502: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      503: components['responses']['EngineUnreachable'];
    };
  };
  openTerminal: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        id: components['parameters']['WorkspaceId'];
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Switching protocols. */
      101: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      401: components['responses']['Unauthenticated'];
      /** @description Not the caller's workspace */
      403: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
    };
  };
}

/**
 * Limits and field names of the wire contract, for code that needs them at
 * run time.
 */
export const wire = {
  nameMaxLength: 100,
  repoMaxLength: 2048,
  branchMaxLength: 255,
  workspaceFields: ['name', 'repo', 'branch', 'profile'],
  portMinimum: 1,
  portMaximum: 65535,
  secretFields: ['name', 'value', 'git_host'],
  secretValueMaxLength: 16384
} as const;
