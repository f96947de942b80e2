"""The terminal relay: a WebSocket between the browser and the workspace's ttyd."""
