# The workspace owner's personal secrets as environment variables of every login shell (the
# terminal session starts its shell as one). The server writes the file at start and whenever a secret
# changes, into a tmpfs only this user can read: a new shell sees the latest ones.
if [ -r /run/workspace-secrets/env ]; then
	. /run/workspace-secrets/env
fi
