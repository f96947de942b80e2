// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The "new code workspace" dialog. It stays open until the server accepted
 * the workspace, showing the server's validation errors beside the fields.
 */

import { Dialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';
import type { Profile, Workspace, WorkspaceSpec, WorkspaceField } from '../api';
import { limits, WorkspaceRequestError } from '../api';
import type { Texts } from '../texts';

const FORM_CLASS = 'jp-CodeWorkspaces-form';
const FIELD_ERROR_CLASS = 'jp-CodeWorkspaces-fieldError';
const FORM_ERROR_CLASS = 'jp-CodeWorkspaces-formError';

interface IField {
  input: HTMLInputElement | HTMLSelectElement;
  error: HTMLElement;
}

/**
 * The form inside the dialog.
 */
export class CreateWorkspaceForm
  extends Widget
  implements Dialog.IBodyWidget<Workspace | null>
{
  /**
   * `profiles`: the workspace profiles the user may use; a picker is shown
   * when there is more than one.
   */
  constructor(texts: Texts, profiles: readonly Profile[] = []) {
    super();
    const trans = texts.trans;
    this.addClass(FORM_CLASS);
    this._fields = {
      name: this._addField('name', trans.__('Name'), {
        placeholder: trans.__('my-project'),
        hint: trans.__('Shown in the sidebar and on the terminal tab.'),
        required: true,
        maxLength: limits.nameMaxLength
      }),
      repo: this._addField('repo', trans.__('Repository'), {
        placeholder: trans.__('owner/repo or https://host/owner/repo.git'),
        hint: trans.__('Cloned into the workspace when it first starts.'),
        maxLength: limits.repoMaxLength
      }),
      branch: this._addField('branch', trans.__('Branch'), {
        placeholder: trans.__('main'),
        hint: trans.__("Leave empty for the repository's default branch."),
        maxLength: limits.branchMaxLength
      })
    };
    if (profiles.length > 1) {
      this._fields.profile = this._addProfilePicker(texts, profiles);
    }
    this._formError = document.createElement('div');
    this._formError.className = FORM_ERROR_CLASS;
    this._formError.setAttribute('role', 'alert');
    this._formError.hidden = true;
    this.node.appendChild(this._formError);
  }

  /**
   * The workspace the server created, once it did.
   */
  created: Workspace | null = null;

  getValue(): Workspace | null {
    return this.created;
  }

  /**
   * What the user typed, trimmed.
   */
  get spec(): WorkspaceSpec {
    const spec: WorkspaceSpec = {
      name: this._fields.name!.input.value.trim(),
      repo: this._fields.repo!.input.value.trim(),
      branch: this._fields.branch!.input.value.trim()
    };
    if (this._fields.profile) {
      spec.profile = this._fields.profile.input.value;
    }
    return spec;
  }

  /**
   * Fill the fields (used to prefill from command arguments).
   */
  setSpec(spec: Partial<WorkspaceSpec>): void {
    for (const key of Object.keys(this._fields) as WorkspaceField[]) {
      const value = spec[key];
      const field = this._fields[key];
      if (value === undefined || value === null || !field) {
        continue;
      }
      const select = field.input;
      if (
        select instanceof HTMLSelectElement &&
        !Array.from(select.options).some(option => option.value === value)
      ) {
        continue; // a profile the user may not use: keep the default
      }
      field.input.value = value;
    }
  }

  /**
   * Disable the fields while the request runs.
   */
  setBusy(busy: boolean): void {
    for (const field of Object.values(this._fields)) {
      if (field) {
        field.input.disabled = busy;
      }
    }
  }

  /**
   * Show an error beside its field, or above the buttons when it is about no
   * field in particular.
   */
  showError(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    const field = error instanceof WorkspaceRequestError ? error.field : null;
    this.showMessage(message, field);
  }

  /**
   * Show a message beside a field (or above the buttons for null).
   */
  showMessage(message: string, field: WorkspaceField | null): void {
    this.clearErrors();
    const target = field ? this._fields[field] : undefined;
    if (target) {
      const { input, error: slot } = target;
      slot.textContent = message;
      slot.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      if (input instanceof HTMLInputElement) {
        input.select();
      }
    } else {
      this._formError.textContent = message;
      this._formError.hidden = false;
    }
  }

  clearErrors(): void {
    for (const key of Object.keys(this._fields) as WorkspaceField[]) {
      this._clearFieldError(key);
    }
    this._formError.hidden = true;
    this._formError.textContent = '';
  }

  private _clearFieldError(key: WorkspaceField): void {
    const field = this._fields[key];
    if (!field) {
      return;
    }
    const { input, error } = field;
    input.removeAttribute('aria-invalid');
    error.hidden = true;
    error.textContent = '';
  }

  private _addField(
    key: WorkspaceField,
    label: string,
    options: {
      placeholder: string;
      hint: string;
      required?: boolean;
      maxLength?: number;
    }
  ): IField {
    const id = `jp-CodeWorkspaces-${key}-${Private.nextId()}`;
    const row = document.createElement('div');
    row.className = 'jp-CodeWorkspaces-field';

    const labelNode = document.createElement('label');
    labelNode.htmlFor = id;
    labelNode.textContent = label;

    const input = document.createElement('input');
    input.id = id;
    input.name = key;
    input.className = 'jp-mod-styled';
    input.type = 'text';
    input.autocomplete = 'off';
    input.spellcheck = false;
    input.placeholder = options.placeholder;
    if (options.required) {
      input.required = true;
    }
    if (options.maxLength) {
      input.maxLength = options.maxLength;
    }

    const hint = document.createElement('div');
    hint.className = 'jp-CodeWorkspaces-hint';
    hint.id = `${id}-hint`;
    hint.textContent = options.hint;

    const error = document.createElement('div');
    error.className = FIELD_ERROR_CLASS;
    error.id = `${id}-error`;
    error.dataset.field = key;
    error.setAttribute('role', 'alert');
    error.hidden = true;

    input.setAttribute('aria-describedby', `${hint.id} ${error.id}`);
    // Typing in a field answers its error.
    input.addEventListener('input', () => this._clearFieldError(key));

    row.append(labelNode, input, error, hint);
    this.node.appendChild(row);
    return { input, error };
  }

  /**
   * A select of the profiles, the default one chosen; its hint is the chosen
   * profile's description and limits.
   */
  private _addProfilePicker(
    texts: Texts,
    profiles: readonly Profile[]
  ): IField {
    const trans = texts.trans;
    const id = `jp-CodeWorkspaces-profile-${Private.nextId()}`;
    const row = document.createElement('div');
    row.className = 'jp-CodeWorkspaces-field';
    const labelNode = document.createElement('label');
    labelNode.htmlFor = id;
    labelNode.textContent = trans.__('Profile');
    const select = document.createElement('select');
    select.id = id;
    select.name = 'profile';
    select.className = 'jp-mod-styled';
    for (const profile of profiles) {
      const option = document.createElement('option');
      option.value = profile.slug;
      option.textContent = profile.display_name;
      select.appendChild(option);
    }
    select.value = (profiles.find(p => p.default) ?? profiles[0]).slug;
    const hint = document.createElement('div');
    hint.className = 'jp-CodeWorkspaces-hint';
    hint.id = `${id}-hint`;
    const describe = () => {
      const chosen = profiles.find(p => p.slug === select.value);
      hint.textContent = chosen ? Private.describe(chosen, texts) : '';
    };
    describe();
    const error = document.createElement('div');
    error.className = FIELD_ERROR_CLASS;
    error.id = `${id}-error`;
    error.dataset.field = 'profile';
    error.setAttribute('role', 'alert');
    error.hidden = true;
    select.setAttribute('aria-describedby', `${hint.id} ${error.id}`);
    select.addEventListener('change', () => {
      describe();
      this._clearFieldError('profile');
    });
    row.append(labelNode, select, error, hint);
    this.node.appendChild(row);
    return { input: select, error };
  }

  private _fields: Partial<Record<WorkspaceField, IField>>;
  private _formError: HTMLElement;
}

/**
 * A dialog whose accept button creates the workspace and which closes only
 * when that worked.
 */
export class CreateWorkspaceDialog extends Dialog<Workspace | null> {
  constructor(options: CreateWorkspaceDialog.IOptions) {
    const { texts } = options;
    const trans = texts.trans;
    const form = new CreateWorkspaceForm(texts, options.profiles);
    if (options.initial) {
      form.setSpec(options.initial);
    }
    const buttons = [
      Dialog.cancelButton({ label: texts.cancel }),
      Dialog.okButton({ label: texts.create })
    ];
    super({
      title: trans.__('New Code Workspace'),
      body: form,
      buttons,
      focusNodeSelector: 'input[name="name"]'
    });
    this.addClass('jp-CodeWorkspaces-createDialog');
    this._form = form;
    this._buttonsSpec = buttons;
    this._create = options.create;
    this._texts = texts;
  }

  /**
   * Intercept the accept button: create first, close only on success.
   */
  resolve(index?: number): void {
    const button = this._buttonsSpec[index ?? this._buttonsSpec.length - 1];
    if (!button?.accept || this._form.created) {
      super.resolve(index);
      return;
    }
    if (!this._busy) {
      void this._submit(index);
    }
  }

  private async _submit(index: number | undefined): Promise<void> {
    const spec = this._form.spec;
    if (!spec.name) {
      this._form.showMessage(
        this._texts.trans.__('Give the workspace a name.'),
        'name'
      );
      return;
    }
    this._setBusy(true);
    this._form.clearErrors();
    try {
      this._form.created = await this._create(spec);
    } catch (error) {
      if (!this.isDisposed) {
        this._setBusy(false);
        this._form.showError(error);
      }
      return;
    }
    this._setBusy(false);
    super.resolve(index);
  }

  private _setBusy(busy: boolean): void {
    this._busy = busy;
    this._form.setBusy(busy);
    this.node.classList.toggle('jp-mod-busy', busy);
    const buttons = this.node.querySelectorAll<HTMLButtonElement>(
      '.jp-Dialog-footer button'
    );
    buttons.forEach(button => {
      button.disabled = busy;
    });
    const accept = this.node.querySelector<HTMLButtonElement>(
      '.jp-Dialog-footer .jp-mod-accept'
    );
    if (accept) {
      const label = accept.querySelector('.jp-Dialog-buttonLabel') ?? accept;
      label.textContent = busy
        ? this._texts.trans.__('Creating…')
        : this._texts.create;
    }
  }

  private _form: CreateWorkspaceForm;
  private _buttonsSpec: Dialog.IButton[];
  private _create: (spec: WorkspaceSpec) => Promise<Workspace>;
  private _texts: Texts;
  private _busy = false;
}

/**
 * The namespace for `CreateWorkspaceDialog` statics.
 */
export namespace CreateWorkspaceDialog {
  export interface IOptions {
    /** The texts, translated. */
    texts: Texts;
    create: (spec: WorkspaceSpec) => Promise<Workspace>;
    initial?: Partial<WorkspaceSpec>;
    /** The profiles the user may use; a picker is shown for more than one. */
    profiles?: readonly Profile[];
  }

  /**
   * Show the dialog; resolves with the created workspace, or null if the
   * user cancelled.
   */
  export async function show(options: IOptions): Promise<Workspace | null> {
    const dialog = new CreateWorkspaceDialog(options);
    const result = await dialog.launch();
    return result.button.accept ? result.value : null;
  }
}

namespace Private {
  let counter = 0;

  /**
   * A number no other instance got, for unique DOM ids.
   */
  export function nextId(): number {
    return counter++;
  }

  /**
   * A profile's description with the limits it sets, for the picker's hint.
   */
  export function describe(profile: Profile, texts: Texts): string {
    const trans = texts.trans;
    const { cpus, memory, pids, disk } = profile.limits;
    const parts = [
      cpus !== undefined ? trans.__('%1 CPUs', cpus) : '',
      memory ? trans.__('%1 memory', memory) : '',
      pids !== undefined ? trans.__('%1 processes', pids) : '',
      disk ? trans.__('%1 disk', disk) : ''
    ].filter(Boolean);
    return [profile.description, parts.join(', ')].filter(Boolean).join(' · ');
  }
}
