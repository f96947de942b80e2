// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The sidebar's model: the user's workspaces, refreshed periodically while the
 * sidebar is visible, and what open terminals know about their containers.
 */

import type { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import type { ISignal } from '@lumino/signaling';
import { Signal } from '@lumino/signaling';
import type {
  ContainerStatus,
  StopResult,
  Workspace,
  WorkspaceSpec,
  WorkspacesClient
} from '../api';
import type { ConnectionPhase } from '../terminal/connection';

/**
 * What the sidebar's status dot shows.
 */
export type DisplayStatus = 'running' | 'stopped' | 'starting' | 'error';

/**
 * Combine the container's Docker state with what an open terminal is doing
 * right now (which is fresher than the last poll).
 */
export function displayStatus(
  container: ContainerStatus | undefined,
  phase: ConnectionPhase | null = null
): DisplayStatus {
  switch (phase) {
    case 'checking':
    case 'starting':
    case 'creating':
    case 'connecting':
    case 'waiting':
      return 'starting';
    case 'connected':
      return 'running';
    case 'failed':
      return 'error';
    default:
      break;
  }
  switch (container) {
    case 'running':
      return 'running';
    case 'restarting':
      return 'starting';
    case 'dead':
    case 'unknown':
      return 'error';
    default:
      // exited, created, paused, missing: opening the terminal starts it.
      return 'stopped';
  }
}

/**
 * The user's workspaces.
 */
export class WorkspaceListModel implements IDisposable {
  constructor(
    readonly client: WorkspacesClient,
    options: WorkspaceListModel.IOptions = {}
  ) {
    const interval = options.refreshInterval ?? 10000;
    this._poll = new Poll({
      auto: false,
      factory: () => this._fetch(),
      frequency: { interval, backoff: true, max: 10 * interval },
      name: 'jupyter-popebot-code:workspaces',
      // Poll only while someone can see the list.
      standby: () => !this._visible || 'when-hidden'
    });
  }

  /**
   * Workspaces, starred first then most recently updated (the server's order).
   */
  get workspaces(): readonly Workspace[] {
    return this._workspaces;
  }

  /**
   * Why the last refresh failed, or null.
   */
  get error(): string | null {
    return this._error;
  }

  /**
   * Whether the first list has arrived.
   */
  get loaded(): boolean {
    return this._loaded;
  }

  /**
   * Emitted when anything the sidebar shows changes.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * Emitted with the id of a workspace deleted through this model.
   */
  get removed(): ISignal<this, string> {
    return this._removed;
  }

  /**
   * Whether the sidebar is visible; periodic refresh runs only then.
   */
  get visible(): boolean {
    return this._visible;
  }
  set visible(value: boolean) {
    if (this._visible === value) {
      return;
    }
    this._visible = value;
    if (value) {
      void this._poll.start();
      void this._poll.refresh();
    }
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /**
   * What an open terminal of the workspace is doing, if any.
   */
  phase(id: string): ConnectionPhase | null {
    return this._phases.get(id) ?? null;
  }

  /**
   * Record what an open terminal of the workspace is doing (null: none open).
   */
  setPhase(id: string, phase: ConnectionPhase | null): void {
    if (this.phase(id) === phase) {
      return;
    }
    if (phase === null) {
      this._phases.delete(id);
    } else {
      this._phases.set(id, phase);
    }
    this._changed.emit();
  }

  /**
   * The status dot of a workspace.
   */
  status(workspace: Workspace): DisplayStatus {
    return displayStatus(workspace.container?.status, this.phase(workspace.id));
  }

  /**
   * Fetch the list now.
   */
  refresh(): Promise<void> {
    return this._fetch().catch(() => undefined);
  }

  async create(spec: WorkspaceSpec): Promise<Workspace> {
    const workspace = await this.client.create(spec);
    await this.refresh();
    return workspace;
  }

  async rename(id: string, name: string): Promise<Workspace> {
    const workspace = await this.client.rename(id, name);
    this._replace(workspace);
    await this.refresh();
    return workspace;
  }

  async toggleStar(id: string): Promise<Workspace> {
    const workspace = await this.client.toggleStar(id);
    this._replace(workspace);
    await this.refresh();
    return workspace;
  }

  /**
   * Stop a workspace's container (its files stay) and show the new state.
   */
  async stop(id: string): Promise<StopResult> {
    const result = await this.client.stop(id);
    await this.refresh();
    return result;
  }

  /**
   * Whether a workspace has a container to stop: running or paused, or a
   * terminal connected to it (fresher than the last list).
   */
  canStop(workspace: Workspace): boolean {
    const state = workspace.container?.status;
    return (
      state === 'running' ||
      state === 'paused' ||
      this.phase(workspace.id) === 'connected'
    );
  }

  async remove(id: string): Promise<void> {
    await this.client.remove(id);
    this._workspaces = this._workspaces.filter(w => w.id !== id);
    this._phases.delete(id);
    this._changed.emit();
    this._removed.emit(id);
    await this.refresh();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _fetch(): Promise<void> {
    const request = ++this._requests;
    try {
      const workspaces = await this.client.list();
      if (request !== this._requests) {
        return; // a newer refresh started meanwhile: its answer wins
      }
      this._workspaces = workspaces;
      this._error = null;
    } catch (reason) {
      if (request === this._requests) {
        this._error = reason instanceof Error ? reason.message : String(reason);
        this._changed.emit();
      }
      throw reason; // makes the poll back off
    } finally {
      this._loaded = true;
    }
    this._changed.emit();
  }

  /**
   * Show an answer at once, keeping the container state the list carried.
   */
  private _replace(workspace: Workspace): void {
    this._workspaces = this._workspaces.map(w =>
      w.id === workspace.id ? { container: w.container, ...workspace } : w
    );
    this._changed.emit();
  }

  private _poll: Poll;
  private _visible = false;
  private _loaded = false;
  private _requests = 0;
  private _error: string | null = null;
  private _workspaces: Workspace[] = [];
  private _phases = new Map<string, ConnectionPhase>();
  private _changed = new Signal<this, void>(this);
  private _removed = new Signal<this, string>(this);
}

/**
 * The namespace for `WorkspaceListModel` statics.
 */
export namespace WorkspaceListModel {
  export interface IOptions {
    /** Milliseconds between refreshes while visible. */
    refreshInterval?: number;
  }
}
