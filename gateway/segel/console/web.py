"""Templates: one Jinja2 environment over the console's templates and every router's, autoescaped.

Every template gets the context `Ctx` as `c`, the user, the translator `t` (dates, numbers, "3
min ago" in the user's language and the configured zone), `_()`/`ngettext()` for the catalog,
the CSRF token, the languages and the top bar's links the user may follow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from segel import accounts, i18n

if TYPE_CHECKING:
    from segel.console.routing import Ctx, NavItem

HERE = Path(__file__).parent
STATIC = HERE / "static"


class Web:
    def __init__(self, template_dirs: Sequence[Path], nav: Sequence[NavItem]) -> None:
        self.env = Environment(loader=ChoiceLoader([FileSystemLoader(str(d)) for d in template_dirs]),
                               autoescape=select_autoescape(["html", "xml"], default_for_string=True),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.globals["static"] = self.static_url
        self.env.globals["role_label"] = lambda role: accounts.ROLE_LABELS.get(role, role)
        self.nav = sorted(nav, key=lambda n: (n.order, n.path))
        self._versions: dict[str, str] = {}

    def static_url(self, path: str) -> str:
        """/static/<path>?v=<content hash>: browsers cache assets until they change."""
        v = self._versions.get(path)
        if v is None:
            f = STATIC / path
            v = hashlib.sha256(f.read_bytes()).hexdigest()[:10] if f.is_file() else "0"
            self._versions[path] = v
        return f"/static/{path}?v={v}"

    def render(self, c: Ctx, template: str, values: dict[str, Any]) -> str:
        user = c.user
        ctx = {
            "c": c, "user": user, "t": c.t, "_": c.t._, "gettext": c.t._, "ngettext": c.t.ngettext,
            "csrf": c.csrf, "lang": c.t.lang, "languages": i18n.LANGUAGES, "path": c.request.url.path,
            "nav": [n for n in self.nav if user is not None and user.can(n.permission)],
            "now": c.now(), "zone_name": c.t.zone_name, "instance": c.state.title,
        }
        ctx.update(values)
        return self.env.get_template(template).render(ctx)
