"""The workspace model, whatever runs the containers: service, store, validation, idle, capacity."""
