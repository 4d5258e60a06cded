"""CLI command modules; each defines `register(group: click.Group) -> None`."""
