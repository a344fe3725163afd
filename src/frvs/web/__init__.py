"""The web console: operators, reviewers, investigators and auditors on a screen.

Design: server-rendered pages (Jinja2) plus a small amount of hand-written vanilla
JavaScript, all served by FRVS itself (no CDN, no build step, no npm at run or build
time). Why this and not a single-page app or htmx:

- **Long-lived and reviewable.** The pages are HTML templates and a few hundred lines
  of plain ES2020 that any browser runs as-is; there is no bundler, framework or
  transpiler whose upgrades the project would have to follow for years, and nothing to
  vendor or audit but our own files.
- **The public API is the only data path.** The server renders only the shell of a
  page (the signed-in person, the navigation their role allows, the forms); the data
  comes from the same ``/v1`` routes integrators use, called by the page's script with
  the session cookie. The console therefore cannot show or do anything the API would
  refuse that key, and the authorisation matrix of the API covers it too.
- **Live alerts need a little script anyway** (Server-Sent Events, evidence images,
  confirm/dismiss without losing the queue), which is what htmx would have added;
  written directly it is a few functions, with no third-party code in the page.

Sign-in: a person pastes their API key once; the server keeps it in memory behind an
HTTP-only, SameSite=Strict session cookie (:mod:`frvs.web.sessions`), and the API's
auth dependency accepts that cookie. What the console shows follows the key's role
(:mod:`frvs.web.pages`); a page of another role answers 403.
"""

from frvs.web.router import mount_console

__all__ = ["mount_console"]
