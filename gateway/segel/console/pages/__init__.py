"""The console's own pages, one module per page family, each a `segel.console.Router`."""
