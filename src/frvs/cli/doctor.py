"""``frvs doctor``: check that the store and its audit trail agree."""

from __future__ import annotations

from typing import Annotated

import typer

from frvs.cli.context import JsonOption, domain_errors, emit_json, output_console, state
from frvs.oversight.doctor import examine

console = output_console()

EXIT_DISAGREES = 30
"""Same as ``frvs audit verify``: the trail does not account for the store."""


def doctor(
    ctx: typer.Context,
    remove_orphans: Annotated[bool, typer.Option(
        "--remove-orphans", help="Delete enrolment crop files no template refers to.")] = False,
    as_json: bool = JsonOption,
) -> None:
    """Every template has its enrolment audit entry and every enrolment entry its template
    (unless a later entry deleted it); lists crop files nothing refers to. Exits 30 when
    the store and the trail disagree."""
    with domain_errors(as_json):
        app = state(ctx).app
        report = examine(app.store)
        removed = 0
        if remove_orphans and report.orphan_crops.count:
            removed = app.galleries.sweep_orphan_crops(grace_seconds=0)
    if as_json:
        emit_json(report.as_dict() | {"orphans_removed": removed})
    else:
        console.print(f"{report.templates} templates, {report.enrolment_entries} enrolment "
                      "entries", highlight=False)
        for finding in report.findings:
            console.print(f"[red]{finding.count} {finding.kind.replace('_', ' ')}[/]: "
                          + "; ".join(finding.examples[:5]), highlight=False)
        orphans = report.orphan_crops
        if orphans.count:
            what = f"removed {removed}" if remove_orphans else "--remove-orphans deletes them"
            console.print(f"{orphans.count} orphan crop file(s) ({what})", highlight=False)
        if report.ok:
            console.print("the store and the audit trail agree", highlight=False)
    if not report.ok:
        raise typer.Exit(EXIT_DISAGREES)
