"""Previews: web apps inside a workspace, proxied under the server's base URL or their own host."""
