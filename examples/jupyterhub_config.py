# A complete JupyterHub configuration with code workspaces served by one shared service.
#
# The service `code-workspaces` is the only process that talks to Docker; users' own servers and
# terminals get no Docker access at all. Run the hub as root (LocalProcessSpawner starts each
# user's server as that user); the service then runs as root too, which changes nothing it could
# do: the Docker socket it holds is root-equivalent under any user. To give the service a user of
# its own (its files are then that user's), create one in the `docker` group and pass user= below:
#
#     useradd --system --create-home --groups docker popebot-code
#     jupyterhub -f examples/jupyterhub_config.py
#
# Install into the hub's environment (one that every user can run, not under /root):
#     pip install jupyterhub jupyterlab jupyter-popebot-code
#     npm install -g configurable-http-proxy
# and build the workspace image on the engine: scripts/build-image.sh.

from jupyter_popebot_code.hub import configure_jupyterhub

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

c.JupyterHub.bind_url = "http://127.0.0.1:8000"
c.JupyterHub.authenticator_class = "pam"  # or your OAuthenticator, LDAP, ...
c.Authenticator.allowed_users = {"alice", "bob"}
c.Authenticator.admin_users = {"alice"}  # hub admins also see and manage every workspace
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.default_url = "/lab"

# One line adds the service, its roles and scopes, and tells single-user servers where it is.
configure_jupyterhub(
    c,
    # user="popebot-code",  # a unix user of the docker group (default: the hub's, e.g. root)
    # port=10101, name="code-workspaces",
    # config_file="/etc/jupyter-popebot-code/service_config.py",
)

# Options of the service go into its own config file (config_file above), for example:
#     c.CodeWorkspacesApp.idle_timeout = 3600           # stop unused workspaces (0: never)
#     c.CodeWorkspacesApp.max_running_workspaces = 20   # all users together (default: host size)
#     c.CodeWorkspacesApp.admin_users = ["carol"]       # admins besides the hub's
#     c.HubSync.keep_deleted_users_data = False          # deleted hub users' files go too
#     c.ContainerManager.mem_limit = "4g"

# Optional: cull idle single-user servers (pip install jupyterhub-idle-culler); terminal use in
# a workspace counts as activity. Needs `import sys`.
# c.JupyterHub.services.append({
#     "name": "idle-culler",
#     "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"],
# })
# c.JupyterHub.load_roles.append({
#     "name": "idle-culler",
#     "services": ["idle-culler"],
#     "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
# })
