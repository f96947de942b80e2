// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The preview panel of a port of a workspace: the web app in a sandboxed
 * iframe, and a line that says when nothing listens on the port yet (the
 * frame reloads by itself once something does).
 */

import { IFrame } from '@jupyterlab/ui-components';
import type { IDisposable } from '@lumino/disposable';
import { Panel, Widget } from '@lumino/widgets';
import { absolutePreviewUrl } from '../api';
import { workspaceIcon } from '../icons';
import type { PortsModel } from './ports';
import type { Texts } from '../texts';

const PREVIEW_CLASS = 'jp-CodeWorkspacePreview';
const NOTICE_CLASS = 'jp-CodeWorkspacePreview-notice';
const FRAME_CLASS = 'jp-CodeWorkspacePreview-frame';

/**
 * What the preview's page may do. Never `allow-same-origin`: the page runs in
 * an opaque origin (as the server's `Content-Security-Policy: sandbox` says
 * too), so it cannot read JupyterLab's cookies or storage nor call its API as
 * the user. No top navigation either: it cannot replace JupyterLab.
 */
export const PREVIEW_SANDBOX: IFrame.SandboxExceptions[] = [
  'allow-scripts',
  'allow-forms',
  'allow-modals',
  'allow-popups',
  'allow-downloads',
  'allow-pointer-lock',
  'allow-presentation'
];

/**
 * The content of a preview's main-area panel.
 */
export class WorkspacePreview extends Panel {
  constructor(options: WorkspacePreview.IOptions) {
    super();
    this.workspaceId = options.workspaceId;
    this.port = options.port;
    this._ports = options.ports;
    this._texts = options.texts;
    this._baseUrl = options.baseUrl;
    this.addClass(PREVIEW_CLASS);
    this.node.dataset.workspaceId = this.workspaceId;
    this.node.dataset.port = String(this.port);
    this.title.icon = workspaceIcon;
    this.name = options.name || this.workspaceId;

    this._notice = new Widget();
    this._notice.addClass(NOTICE_CLASS);
    this._notice.node.setAttribute('role', 'status');
    this._noticeText = document.createElement('span');
    this._retryButton = document.createElement('button');
    this._retryButton.className = 'jp-mod-styled jp-mod-accept';
    this._retryButton.textContent = this._texts.preview.retry;
    this._retryButton.hidden = true;
    this._retryButton.addEventListener('click', () => void this._resolve());
    this._notice.node.append(this._noticeText, this._retryButton);
    this._notice.hide();

    this._frame = new IFrame({
      sandbox: PREVIEW_SANDBOX,
      referrerPolicy: 'no-referrer'
    });
    this._frame.addClass(FRAME_CLASS);
    this._iframe.title = this._texts.preview.frameTitle(this._name, this.port);
    this.addWidget(this._notice);
    this.addWidget(this._frame);

    this._ports.changed.connect(this._onPorts, this);
    this._watch = this._ports.watch(this.workspaceId);
    void this._resolve();
  }

  readonly workspaceId: string;
  readonly port: number;

  /**
   * The preview's absolute URL, once known.
   */
  get url(): string | null {
    return this._url;
  }

  /**
   * Resolves when the URL is known (or could not be found out).
   */
  get ready(): Promise<void> {
    return this._ready;
  }

  /**
   * The workspace's name; the tab says "name:port".
   */
  get name(): string {
    return this._name;
  }
  set name(value: string) {
    this._name = value;
    this.title.label = `${value}:${this.port}`;
    if (this._frame) {
      this._iframe.title = this._texts.preview.frameTitle(value, this.port);
    }
  }

  /**
   * Load the page again.
   */
  reload(): void {
    if (this._url) {
      // Setting src navigates even to the same address.
      this._iframe.setAttribute('src', this._url);
    } else {
      void this._resolve();
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._watch?.dispose();
    this._watch = null;
    this._ports.changed.disconnect(this._onPorts, this);
    super.dispose();
  }

  private get _iframe(): HTMLIFrameElement {
    return this._frame.node.querySelector('iframe')!;
  }

  private _resolve(): Promise<void> {
    this._ready = (async () => {
      try {
        const url = await this._ports.previewUrl(this.workspaceId, this.port);
        this._url = absolutePreviewUrl(url, this._baseUrl);
        this.title.caption = this._url;
        this._frame.url = this._url;
        this._showNotice(null);
        // What is known of the port already (a reading that changes nothing
        // emits nothing).
        this._onPorts();
      } catch (reason) {
        const why = reason instanceof Error ? reason.message : String(reason);
        this._showNotice(this._texts.preview.failed(why), true);
      }
    })();
    return this._ready;
  }

  /**
   * Follow the port: say when nothing listens, reload when it comes.
   */
  private _onPorts(): void {
    const state = this._ports.get(this.workspaceId);
    if (!state || state.error !== null || this.isDisposed) {
      return;
    }
    const listed = state.ports.find(p => p.port === this.port);
    const usable = state.status === 'running' && listed?.reachable === true;
    if (usable) {
      this._watch?.dispose();
      this._watch = null;
      if (this._waiting) {
        this._waiting = false;
        this.reload();
      }
      if (this._url) {
        this._showNotice(null);
      }
      return;
    }
    this._waiting = true;
    this._watch ??= this._ports.watch(this.workspaceId);
    if (this._url) {
      this._showNotice(this._waitingText());
    }
  }

  private _waitingText(): string {
    return this._texts.preview.waitingForPort(this.port, this._name);
  }

  private _showNotice(text: string | null, retry = false): void {
    this._noticeText.textContent = text ?? '';
    this._retryButton.hidden = !retry;
    this._notice.setHidden(text === null);
  }

  private _ports: PortsModel;
  private _texts: Texts;
  private _baseUrl: string;
  private _name = '';
  private _url: string | null = null;
  private _ready: Promise<void> = Promise.resolve();
  private _waiting = false;
  private _watch: IDisposable | null;
  private _frame: IFrame;
  private _notice: Widget;
  private _noticeText: HTMLSpanElement;
  private _retryButton: HTMLButtonElement;
}

/**
 * The namespace for `WorkspacePreview` statics.
 */
export namespace WorkspacePreview {
  export interface IOptions {
    workspaceId: string;
    port: number;
    /** The workspace's name, for the tab. */
    name?: string;
    ports: PortsModel;
    texts: Texts;
    /** What a preview URL that is a path is relative to (the server's URL). */
    baseUrl: string;
  }
}
