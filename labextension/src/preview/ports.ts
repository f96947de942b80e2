// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The ports running workspaces listen on, for the sidebar and the preview
 * panels, and reading a port a person typed.
 */

import type { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import type { ISignal } from '@lumino/signaling';
import { Signal } from '@lumino/signaling';
import type { Port, PortList } from '../api';
import { isPort, previewUrlFromTemplate } from '../api';
import type { WorkspaceListModel } from '../workspaces/model';

/**
 * What the sidebar and the preview panels know about a workspace's ports.
 */
export interface IWorkspacePorts {
  /** The container's state when the ports were read. */
  readonly status: PortList['status'];
  /** Listening ports, lowest first (none unless running). */
  readonly ports: readonly Port[];
  /** Whether more ports listen than were listed (the server caps the list). */
  readonly truncated: boolean;
  /** Preview URL of any port (replace `{port}`). */
  readonly urlTemplate: string;
  /** Why the last reading failed (the ports shown are the last known), or null. */
  readonly error: string | null;
}

/**
 * The ports the user's running workspaces listen on, read every few seconds
 * while someone looks: the sidebar (its running workspaces) or a preview
 * panel waiting for its port (that workspace, whatever its state). One
 * reading at a time: a refresh asked for during a reading runs once after it.
 */
export class PortsModel implements IDisposable {
  constructor(
    readonly workspaces: WorkspaceListModel,
    options: PortsModel.IOptions = {}
  ) {
    const interval = options.refreshInterval ?? 3000;
    this._poll = new Poll({
      auto: false,
      factory: () => this.refresh(true),
      frequency: { interval, backoff: true, max: 10 * interval },
      name: 'jupyter-popebot-code:ports',
      standby: () => this._ids().length === 0 || 'when-hidden'
    });
    workspaces.changed.connect(this._onListChanged, this);
  }

  /**
   * Emitted when the ports of any workspace change.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * Whether the sidebar is visible; its running workspaces are read only then.
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
      this._wake();
    }
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /**
   * The last reading of a workspace's ports, or null before the first one.
   */
  get(id: string): IWorkspacePorts | null {
    return this._states.get(id) ?? null;
  }

  /**
   * Whether a reading is under way (for tests and the busy indicator).
   */
  get reading(): boolean {
    return this._reading !== null;
  }

  /**
   * Read a workspace's ports while the returned handle is not disposed, even
   * with the sidebar hidden or the workspace not (yet) running.
   */
  watch(id: string): IDisposable {
    this._watched.set(id, (this._watched.get(id) ?? 0) + 1);
    this._wake();
    let disposed = false;
    return {
      get isDisposed() {
        return disposed;
      },
      dispose: () => {
        if (disposed) {
          return;
        }
        disposed = true;
        const count = (this._watched.get(id) ?? 1) - 1;
        if (count > 0) {
          this._watched.set(id, count);
        } else {
          this._watched.delete(id);
          this._prune();
        }
      }
    };
  }

  /**
   * Read the ports now. During a reading, resolves when the reading after it
   * (which this asks for) is done; never two readings at once.
   *
   * @param fail - reject when every workspace's reading failed (the poll
   * backs off then); otherwise errors are only recorded.
   */
  refresh(fail = false): Promise<void> {
    let reading: Promise<void>;
    if (this._next) {
      reading = this._next;
    } else if (this._reading) {
      reading = this._next = this._reading
        .catch(() => undefined)
        .then(() => {
          this._next = null;
          return this._start();
        });
    } else {
      reading = this._start();
    }
    return fail ? reading : reading.catch(() => undefined);
  }

  /**
   * The preview URL of a port of a workspace: the one listed, else from the
   * workspace's URL template (read first when unknown, e.g. a stopped
   * workspace the sidebar never showed).
   */
  async previewUrl(id: string, port: number): Promise<string> {
    const known = this._states.get(id);
    const listed = known?.ports.find(p => p.port === port);
    if (listed) {
      return listed.url;
    }
    const template =
      known?.urlTemplate ??
      (await this.workspaces.client.ports(id)).url_template;
    return previewUrlFromTemplate(template, port);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poll.dispose();
    Signal.clearData(this);
  }

  private _start(): Promise<void> {
    const reading = this._read().finally(() => {
      this._reading = null;
    });
    this._reading = reading;
    return reading;
  }

  /**
   * Ids of the running workspaces the list shows (fresh terminals included).
   */
  private _running(): string[] {
    return this.workspaces.workspaces
      .filter(w => this.workspaces.status(w) === 'running')
      .map(w => w.id);
  }

  /**
   * The workspaces to read now.
   */
  private _ids(): string[] {
    const ids = new Set(this._visible ? this._running() : []);
    this._watched.forEach((_, id) => ids.add(id));
    return [...ids];
  }

  private async _read(): Promise<void> {
    const ids = this._ids();
    if (ids.length === 0 || this.isDisposed) {
      return;
    }
    const client = this.workspaces.client;
    const answers = await Promise.allSettled(ids.map(id => client.ports(id)));
    if (this.isDisposed) {
      return;
    }
    const before = this._snapshot();
    let failures = 0;
    let why = '';
    answers.forEach((answer, i) => {
      const id = ids[i];
      if (answer.status === 'fulfilled') {
        const list = answer.value;
        this._states.set(id, {
          status: list.status,
          ports: list.ports,
          truncated: list.truncated,
          urlTemplate: list.url_template,
          error: null
        });
        return;
      }
      failures++;
      const reason = answer.reason;
      why = reason instanceof Error ? reason.message : String(reason);
      const last = this._states.get(id);
      this._states.set(id, {
        status: last?.status ?? 'unknown',
        ports: last?.ports ?? [],
        truncated: last?.truncated ?? false,
        urlTemplate: last?.urlTemplate ?? '',
        error: why
      });
    });
    this._prune(false);
    if (this._snapshot() !== before) {
      this._changed.emit();
    }
    if (failures === ids.length) {
      throw new Error(why);
    }
  }

  /**
   * Forget the workspaces that are neither running nor watched.
   */
  private _prune(emit = true): void {
    const keep = new Set(this._running());
    this._watched.forEach((_, id) => keep.add(id));
    let pruned = false;
    for (const id of [...this._states.keys()]) {
      if (!keep.has(id)) {
        this._states.delete(id);
        pruned = true;
      }
    }
    if (pruned && emit) {
      this._changed.emit();
    }
  }

  /**
   * Read soon: something new wants ports.
   */
  private _wake(): void {
    if (this.isDisposed) {
      return;
    }
    void this._poll.start();
    void this.refresh();
  }

  private _onListChanged(): void {
    const running = this._running();
    const fresh = running.some(id => !this._states.has(id));
    this._prune();
    if (fresh && this._visible) {
      this._wake();
    }
  }

  private _snapshot(): string {
    return JSON.stringify([...this._states.entries()]);
  }

  private _poll: Poll;
  private _visible = false;
  private _reading: Promise<void> | null = null;
  private _next: Promise<void> | null = null;
  private _states = new Map<string, IWorkspacePorts>();
  private _watched = new Map<string, number>();
  private _changed = new Signal<this, void>(this);
}

/**
 * The namespace for `PortsModel` statics.
 */
export namespace PortsModel {
  export interface IOptions {
    /** Milliseconds between readings while someone looks. */
    refreshInterval?: number;
  }
}

/**
 * Why a typed port is not one.
 */
export type PortInputProblem = 'empty' | 'notANumber' | 'outOfRange';

/**
 * Read a port number a person typed: digits only (no signs, decimals,
 * exponents or hex), within the wire contract's range.
 */
export function parsePortInput(
  text: string
): { port: number } | { problem: PortInputProblem } {
  const trimmed = text.trim();
  if (trimmed === '') {
    return { problem: 'empty' };
  }
  if (!/^[0-9]+$/.test(trimmed)) {
    return { problem: 'notANumber' };
  }
  const port = Number(trimmed);
  return isPort(port) ? { port } : { problem: 'outOfRange' };
}
