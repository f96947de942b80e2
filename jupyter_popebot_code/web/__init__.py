"""The REST handlers and what every handler of the extension shares."""
