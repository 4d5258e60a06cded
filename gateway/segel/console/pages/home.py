"""The start page."""

from __future__ import annotations

from starlette.responses import Response

from segel.console.routing import Ctx, Router
from segel.i18n import N_

router = Router("home")
router.nav(N_("Map"), "/", order=10)


@router.page("/")
def home(c: Ctx) -> Response:
    return c.render("home.html")
