"""The operator's console: a web app beside the gateway (live map, alert desk, box pages, fleet), Bahasa Indonesia first.

Pages are rendered on the server (Starlette, Jinja2); small vanilla JavaScript adds the map
(Leaflet, bundled) and live updates (Server-Sent Events). Every write goes through the library
function the CLI uses. Other packages add pages with a `Router` (docs/console.md, "Adding pages"):

    from segel.console import Router, Ctx
    router = Router("receipts", templates=Path(__file__).parent / "templates")

    @router.page("/receipts/{box}", permission=accounts.CONFIRM_HANDOVER)
    def receipt(c: Ctx) -> Response:
        ...
        return c.render("receipt.html", box=box)
"""

from segel.console.routing import Ctx, Router

__all__ = ["Ctx", "Router"]
