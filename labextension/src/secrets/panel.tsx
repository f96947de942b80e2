// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The "Code Workspace Secrets" panel: the user's personal secrets by name
 * (never a value), a form to add or replace one (the value in a password
 * field), delete buttons, and the server's errors beside the field at fault.
 */

import type { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { SecretField, SecretInfo, SecretsClient } from './client';
import { SecretRequestError } from './client';

type Errors = Partial<Record<SecretField | 'form', string>>;

/**
 * The panel's widget (shown in the main area).
 */
export class SecretsPanel extends ReactWidget {
  constructor(
    private readonly _client: SecretsClient,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.id = 'jp-CodeWorkspaces-secrets';
    this.addClass('jp-CodeWorkspaces-secrets');
    this.title.label = _trans.__('Code Workspace Secrets');
    this.title.closable = true;
  }

  render(): JSX.Element {
    return <SecretsView client={this._client} trans={this._trans} />;
  }
}

interface IViewProps {
  client: SecretsClient;
  trans: TranslationBundle;
}

function SecretsView({ client, trans }: IViewProps): JSX.Element {
  const [secrets, setSecrets] = React.useState<SecretInfo[] | null>(null);
  const [errors, setErrors] = React.useState<Errors>({});
  const [notice, setNotice] = React.useState('');
  const [busy, setBusy] = React.useState(false);
  const [name, setName] = React.useState('');
  const [value, setValue] = React.useState('');
  const [gitHost, setGitHost] = React.useState('');
  const valueInput = React.useRef<HTMLInputElement>(null);

  const failed = (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    const field = error instanceof SecretRequestError ? error.field : null;
    setErrors({ [field ?? 'form']: message });
  };
  const reload = async () => {
    try {
      setSecrets(await client.list());
    } catch (error) {
      failed(error);
    }
  };
  React.useEffect(() => void reload(), []);

  const save = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    setNotice('');
    try {
      const saved = await client.put(name.trim(), {
        value,
        git_host: gitHost.trim() || null
      });
      setValue('');
      setName('');
      setGitHost('');
      setNotice(
        trans.__(
          'Saved %1. New shells in your workspaces see it within seconds; shells already open keep what they had.',
          saved.name
        )
      );
      await reload();
    } catch (error) {
      failed(error);
    } finally {
      setBusy(false);
    }
  };
  const remove = async (secret: SecretInfo) => {
    setBusy(true);
    setErrors({});
    setNotice('');
    try {
      await client.remove(secret.name);
      setNotice(
        trans.__('Deleted %1: new shells no longer have it.', secret.name)
      );
      await reload();
    } catch (error) {
      failed(error);
    } finally {
      setBusy(false);
    }
  };
  const replace = (secret: SecretInfo) => {
    setName(secret.name);
    setGitHost(secret.git_host ?? '');
    setValue('');
    valueInput.current?.focus();
  };
  const fieldError = (field: SecretField) =>
    errors[field] ? (
      <div
        className="jp-CodeWorkspaces-fieldError"
        data-field={field}
        role="alert"
      >
        {errors[field]}
      </div>
    ) : null;

  return (
    <div className="jp-CodeWorkspaces-secretsBody">
      <h2>{trans.__('Code Workspace Secrets')}</h2>
      <p>
        {trans.__(
          'Your own tokens and keys, encrypted on the server and given only to your workspaces: each one is an environment variable of every new shell (e.g. GH_TOKEN, CLAUDE_CODE_OAUTH_TOKEN). With a git host, git also uses it as your password for https:// repositories there, so private repositories clone and push. Values are never shown again.'
        )}
      </p>
      {errors.form && (
        <div className="jp-CodeWorkspaces-error" role="alert">
          {errors.form}
        </div>
      )}
      {notice && (
        <div className="jp-CodeWorkspaces-secretsNotice" role="status">
          {notice}
        </div>
      )}
      <table className="jp-CodeWorkspaces-secretsTable">
        <thead>
          <tr>
            <th>{trans.__('Name')}</th>
            <th>{trans.__('Git host')}</th>
            <th>{trans.__('Updated')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {secrets?.length === 0 && (
            <tr>
              <td colSpan={4}>{trans.__('No secrets yet.')}</td>
            </tr>
          )}
          {secrets?.map(secret => (
            <tr key={secret.name} data-secret={secret.name}>
              <td>
                <code>{secret.name}</code>
              </td>
              <td>{secret.git_host ?? ''}</td>
              <td>{new Date(secret.updated_at).toLocaleString()}</td>
              <td>
                <button
                  className="jp-mod-styled"
                  disabled={busy}
                  onClick={() => replace(secret)}
                >
                  {trans.__('Replace')}
                </button>
                <button
                  className="jp-mod-styled jp-mod-warn"
                  disabled={busy}
                  aria-label={trans.__('Delete %1', secret.name)}
                  onClick={() => void remove(secret)}
                >
                  {trans.__('Delete')}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        className="jp-CodeWorkspaces-secretsForm"
        onSubmit={event => void save(event)}
      >
        <h3>{trans.__('Add or replace a secret')}</h3>
        <label className="jp-CodeWorkspaces-field">
          <span>{trans.__('Name')}</span>
          <input
            className="jp-mod-styled"
            name="name"
            value={name}
            placeholder={trans.__('e.g. GH_TOKEN')}
            autoComplete="off"
            spellCheck={false}
            onChange={event => setName(event.target.value.toUpperCase())}
          />
          {fieldError('name')}
        </label>
        <label className="jp-CodeWorkspaces-field">
          <span>{trans.__('Value')}</span>
          <input
            ref={valueInput}
            className="jp-mod-styled"
            type="password"
            name="value"
            value={value}
            autoComplete="new-password"
            onChange={event => setValue(event.target.value)}
          />
          {fieldError('value')}
        </label>
        <label className="jp-CodeWorkspaces-field">
          <span>{trans.__('Git host (optional)')}</span>
          <input
            className="jp-mod-styled"
            name="git_host"
            value={gitHost}
            placeholder={trans.__('e.g. github.com')}
            autoComplete="off"
            spellCheck={false}
            onChange={event => setGitHost(event.target.value)}
          />
          {fieldError('git_host')}
        </label>
        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept"
          disabled={busy}
        >
          {trans.__('Save')}
        </button>
      </form>
    </div>
  );
}
