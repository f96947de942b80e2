"""Where workspaces run: the backend interface, the Docker engine and Docker Swarm backends."""
