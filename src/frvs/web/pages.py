"""The console's pages and which roles see each: the one table the navigation, the
access checks and the tests share.

Separation of duties follows the API's roles: a reviewer reviews alerts and nothing
else, an investigator searches, an operator runs cameras, galleries and attendance, an
auditor reads the trail. Admin keys (which run the installation) see every page, as
they may call every route. Device keys are for edge nodes and cannot sign in.
"""

from __future__ import annotations

from dataclasses import dataclass

from frvs.oversight.models import Role


@dataclass(frozen=True, slots=True)
class Page:
    slug: str
    title: str
    roles: frozenset[Role]
    summary: str
    nav: bool = True  # False: opened from another page (a receipt), not the navigation

    def allows(self, role: Role) -> bool:
        return role is Role.ADMIN or role in self.roles

    @property
    def path(self) -> str:
        return f"/console/{self.slug}"


PAGES: tuple[Page, ...] = (
    Page("alerts", "Alerts", frozenset({Role.REVIEWER}),
         "Watch-list alerts waiting for review, live."),
    Page("cameras", "Cameras", frozenset({Role.OPERATOR}),
         "Cameras, their live status and latest frame."),
    Page("galleries", "Galleries", frozenset({Role.OPERATOR}),
         "Galleries, enrolment and subjects."),
    Page("attendance", "Attendance", frozenset({Role.OPERATOR}),
         "A day's presence report."),
    Page("search", "Search", frozenset({Role.INVESTIGATOR}),
         "1:N search of a probe photo, and past sightings."),
    Page("audit", "Audit", frozenset({Role.AUDITOR}),
         "The audit trail, its integrity and the statistics."),
    Page("check", "Identity check", frozenset({Role.VERIFIER}),
         "A customer's live face, with a head-movement challenge, against their ID."),
    Page("receipt", "Receipt", frozenset({Role.VERIFIER}),
         "The printable receipt of one identity check.", nav=False),
)

BY_SLUG = {page.slug: page for page in PAGES}
CONSOLE_ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.INVESTIGATOR, Role.REVIEWER,
                           Role.AUDITOR, Role.VERIFIER})


def pages_for(role: Role) -> list[Page]:
    """The pages ``role`` may open, in navigation order."""
    return [page for page in PAGES if page.nav and page.allows(role)]


def home_for(role: Role) -> str:
    """Where ``role`` lands after signing in."""
    pages = pages_for(role)
    return pages[0].path if pages else "/"
