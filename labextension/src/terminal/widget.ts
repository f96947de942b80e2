// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The terminal panel of a workspace: xterm.js (loaded lazily, as JupyterLab's
 * terminal does) on top of a `TerminalConnection`, with a status bar that
 * says what the connection is doing.
 *
 * The widget's lifecycle (attach, show, resize, activate, options, theme)
 * handles xterm.js not being loaded or open yet at each step; loading and
 * configuring xterm.js is in `xterm`, the status bar in `status`.
 */

import type { ITranslator } from '@jupyterlab/translation';
import { nullTranslator } from '@jupyterlab/translation';
import type { Message } from '@lumino/messaging';
import { MessageLoop } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import type { FitAddon } from '@xterm/addon-fit';
import type { Terminal as Xterm } from '@xterm/xterm';
import type { Workspace, WorkspacesClient } from '../api';
import type { IConnectionStatus } from './connection';
import { TerminalConnection } from './connection';
import { workspaceIcon } from '../icons';
import type { Texts } from '../texts';
import { texts, TRANSLATION_DOMAIN } from '../texts';
import { StatusBar } from './status';
import type { ITerminalOptions } from './xterm';
import {
  attachKeyHandler,
  createTerminal,
  DEFAULT_OPTIONS,
  xtermOptions
} from './xterm';

export type { ITerminalOptions } from './xterm';

const TERMINAL_CLASS = 'jp-CodeWorkspaceTerminal';
const BODY_CLASS = 'jp-CodeWorkspaceTerminal-body';

/**
 * A workspace's terminal, the content of its main-area panel.
 */
export class WorkspaceTerminal extends Widget {
  constructor(options: WorkspaceTerminal.IOptions) {
    super();
    this.workspaceId = options.workspaceId;
    this._texts = texts(
      (options.translator ?? nullTranslator).load(TRANSLATION_DOMAIN)
    );
    this._options = { ...WorkspaceTerminal.defaultOptions, ...options.options };
    this.id = `jp-CodeWorkspaceTerminal-${Private.nextId()}`;
    this.addClass(TERMINAL_CLASS);
    this.node.dataset.workspaceId = this.workspaceId;
    this._setThemeAttribute();
    this.title.label = options.name || this._texts.workspace;
    this.title.icon = workspaceIcon;
    this.node.tabIndex = -1;

    this._statusBar = new StatusBar(() => {
      void this.reconnect();
    });
    this._body = document.createElement('div');
    this._body.className = BODY_CLASS;
    this.node.append(this._statusBar.node, this._body);

    this.connection = new TerminalConnection({
      workspaceId: this.workspaceId,
      client: options.client,
      sink: {
        write: (text, rendered) => this._term?.write(text, rendered),
        reset: () => this._term?.reset(),
        size: () => ({
          columns: this._term?.cols ?? 80,
          rows: this._term?.rows ?? 24
        })
      },
      texts: this._texts.connection
    });
    this.connection.statusChanged.connect(this._onStatus, this);
    this.connection.workspaceChanged.connect(this._onWorkspace, this);
    this.connection.titleChanged.connect((_, title) => {
      this._shellTitle = title;
      this._updateCaption();
    });
    this._onStatus(this.connection, this.connection.status);

    createTerminal(this._xtermOptions())
      .then(([term, fit]) => {
        if (this.isDisposed) {
          term.dispose();
          return;
        }
        this._term = term;
        this._fit = fit;
        this._initializeTerm();
        this.update();
      })
      .catch(reason => {
        console.error('Failed to load the terminal.', reason);
        this._showStatus({
          phase: 'failed',
          message: this._texts.trans.__(
            'Could not load the terminal: %1',
            String(reason)
          ),
          canRetry: false
        });
      });
  }

  /**
   * The workspace this terminal belongs to.
   */
  readonly workspaceId: string;

  /**
   * The connection to the workspace's shell.
   */
  readonly connection: TerminalConnection;

  /**
   * The last workspace record fetched, if any.
   */
  get workspace(): Workspace | null {
    return this._workspace;
  }

  /**
   * Get a terminal option.
   */
  getOption<K extends keyof ITerminalOptions>(key: K): ITerminalOptions[K] {
    return this._options[key];
  }

  /**
   * Set a terminal option; applies at once.
   */
  setOption<K extends keyof ITerminalOptions>(
    key: K,
    value: ITerminalOptions[K]
  ): void {
    if (this._options[key] === value && key !== 'theme') {
      return;
    }
    this._options[key] = value;
    if (key === 'theme') {
      this._setThemeAttribute();
    }
    if (this._term) {
      const { theme, fontSize, scrollback, fontFamily } = this._xtermOptions();
      this._term.options.theme = theme;
      this._term.options.fontSize = fontSize;
      this._term.options.scrollback = scrollback;
      this._term.options.fontFamily = fontFamily;
    }
    this._needsResize = true;
    this.update();
  }

  /**
   * Set the options that have a value (the settings as they changed).
   */
  setOptions(options: Partial<ITerminalOptions>): void {
    (Object.keys(options) as (keyof ITerminalOptions)[]).forEach(key => {
      const value = options[key];
      if (value !== undefined) {
        this.setOption(key, value as never);
      }
    });
  }

  /**
   * Re-read the JupyterLab theme (called when the theme changes).
   */
  refreshTheme(): void {
    this.setOption('theme', this._options.theme);
  }

  /**
   * Reconnect now, ensuring the container first.
   */
  reconnect(): Promise<void> {
    return this.connection.connect();
  }

  hasSelection(): boolean {
    return this._term?.hasSelection() ?? false;
  }

  getSelection(): string | null {
    return this._term ? this._term.getSelection() : null;
  }

  /**
   * Paste text as if typed (bracketed paste when the shell asked for it).
   */
  paste(data: string): void {
    this._term?.paste(data);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    // Closing the panel leaves the container and its terminal session running.
    this.connection.dispose();
    this._term?.dispose();
    this._term = null;
    super.dispose();
  }

  processMessage(msg: Message): void {
    super.processMessage(msg);
    if (msg.type === 'fit-request') {
      MessageLoop.sendMessage(this, Widget.ResizeMessage.UnknownSize);
    }
  }

  protected onAfterAttach(msg: Message): void {
    this.update();
  }

  protected onAfterShow(msg: Message): void {
    this._needsResize = true;
    this.update();
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    this._needsResize = true;
    this.update();
  }

  /**
   * Take the keyboard, as JupyterLab's terminal does. Before xterm.js is open
   * the panel's node holds the focus, and hands it on once it is.
   */
  protected onActivateRequest(msg: Message): void {
    if (this._term && this._opened) {
      this._term.focus();
    } else {
      this.node.focus();
    }
  }

  protected onUpdateRequest(msg: Message): void {
    if (!this.isVisible || !this.isAttached || !this._term) {
      return;
    }
    if (!this._opened) {
      // xterm.js measures its cells on open: it must be visible by then.
      this._term.open(this._body);
      this._opened = true;
      this._needsResize = true;
      // Activated while xterm.js was still loading: the keys go to it now.
      if (document.activeElement === this.node) {
        this._term.focus();
      }
    }
    if (this._needsResize) {
      this._needsResize = false;
      try {
        this._fit?.fit();
      } catch (reason) {
        console.debug('Terminal fit failed', reason);
      }
      this.connection.resize({
        columns: this._term.cols,
        rows: this._term.rows
      });
    }
    if (!this._started) {
      // Connect once the size is known: ttyd starts the shell at that size.
      this._started = true;
      void this.connection.connect();
    }
  }

  private _xtermOptions() {
    return xtermOptions(
      this._options,
      this.node.isConnected ? this.node : document.body
    );
  }

  private _initializeTerm(): void {
    const term = this._term!;
    term.onData(data => this.connection.send(data));
    attachKeyHandler(term, () => this._options.pasteWithCtrlV);
  }

  private _onWorkspace(_: TerminalConnection, workspace: Workspace): void {
    this._workspace = workspace;
    this.title.label = workspace.name;
    this._updateCaption();
  }

  /**
   * Show the workspace's repository and the shell's own title on hover.
   */
  private _updateCaption(): void {
    const ws = this._workspace;
    const lines = [ws ? ws.name : this.title.label];
    if (ws?.repo) {
      lines.push(ws.branch ? `${ws.repo} @ ${ws.branch}` : ws.repo);
    }
    if (this._shellTitle) {
      lines.push(this._shellTitle);
    }
    this.title.caption = lines.join('\n');
  }

  private _onStatus(_: TerminalConnection, status: IConnectionStatus): void {
    this._showStatus(status);
  }

  private _showStatus(status: IConnectionStatus): void {
    const resized = this._statusBar.show(
      status,
      this._texts.retry(status.phase)
    );
    this.node.dataset.phase = status.phase;
    if (resized) {
      // The status bar takes room from the terminal: fit again.
      this._needsResize = true;
      this.update();
    }
  }

  private _setThemeAttribute(): void {
    this.node.setAttribute('data-term-theme', this._options.theme);
  }

  private _texts: Texts;
  private _options: ITerminalOptions;
  private _term: Xterm | null = null;
  private _fit: FitAddon | null = null;
  private _opened = false;
  private _started = false;
  private _needsResize = true;
  private _workspace: Workspace | null = null;
  private _shellTitle = '';
  private _statusBar: StatusBar;
  private _body: HTMLDivElement;
}

/**
 * The namespace for `WorkspaceTerminal` statics.
 */
export namespace WorkspaceTerminal {
  export interface IOptions {
    workspaceId: string;
    /** The name to show until the workspace record arrives. */
    name?: string;
    client: WorkspacesClient;
    options?: Partial<ITerminalOptions>;
    translator?: ITranslator;
  }

  /**
   * Defaults, kept equal to schema/plugin.json.
   */
  export const defaultOptions: ITerminalOptions = DEFAULT_OPTIONS;
}

namespace Private {
  let counter = 0;

  /**
   * A number no other instance got, for unique DOM ids.
   */
  export function nextId(): number {
    return counter++;
  }
}
