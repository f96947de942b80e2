"""Who is calling and what they may do: owners, the authorizer, the Auth.js identity provider."""
