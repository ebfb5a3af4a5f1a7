"""Validation findings: what is wrong, where (file, table, column, rows), and how to fix it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]
#: How many example rows a finding quotes.
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Finding:
    """One rule broken in one place.

    ``rows`` are the row numbers a user sees: CSV line numbers (the header is line 1) or
    1-based Parquet row numbers; only the first few are kept, ``count`` says how many.
    """

    severity: Severity
    rule: str
    table: str
    message: str
    column: str | None = None
    rows: tuple[int, ...] = ()
    count: int = 0
    hint: str | None = None
    file: str | None = None

    def location(self) -> str:
        where = self.file or self.table
        if self.column:
            where += f", column '{self.column}'"
        if self.rows:
            unit = "line" if (self.file or "").endswith(".csv") else "row"
            unit += "s" if self.count > 1 else ""
            more = (
                f" (and {self.count - len(self.rows)} more)" if self.count > len(self.rows) else ""
            )
            where += f", {unit} {', '.join(map(str, self.rows))}{more}"
        return where


@dataclass
class ValidationReport:
    """All findings of one validation run, in the order they were found."""

    findings: list[Finding] = field(default_factory=list)

    def add(
        self,
        severity: Severity,
        rule: str,
        table: str,
        message: str,
        *,
        column: str | None = None,
        rows: Iterable[int] = (),
        count: int | None = None,
        hint: str | None = None,
        file: str | None = None,
    ) -> None:
        """Record a finding; ``rows`` may be long, only the first few are kept."""
        all_rows = list(rows)
        n = count if count is not None else max(len(all_rows), 0)
        self.findings.append(
            Finding(
                severity=severity,
                rule=rule,
                table=table,
                message=message,
                column=column,
                rows=tuple(int(r) for r in all_rows[:MAX_EXAMPLES]),
                count=n,
                hint=hint,
                file=file,
            )
        )

    def error(self, rule: str, table: str, message: str, **kw) -> None:
        self.add("error", rule, table, message, **kw)

    def warning(self, rule: str, table: str, message: str, **kw) -> None:
        self.add("warning", rule, table, message, **kw)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when the data is usable: warnings are allowed, errors are not."""
        return not self.errors

    def rules(self) -> set[str]:
        return {f.rule for f in self.findings}

    def by_rule(self) -> dict[tuple[str, str], list[Finding]]:
        """Findings grouped by (severity, rule), errors first, in order of discovery."""
        groups: dict[tuple[str, str], list[Finding]] = {}
        for f in sorted(self.findings, key=lambda f: f.severity != "error"):
            groups.setdefault((f.severity, f.rule), []).append(f)
        return groups

    def to_text(self) -> str:
        """The report a person reads: grouped by rule, each finding with its location."""
        if not self.findings:
            return "No problems found: 0 error(s), 0 warning(s): data is usable."
        lines: list[str] = []
        for (severity, rule), group in self.by_rule().items():
            lines.append(f"{severity.upper()} [{rule}]")
            for f in group:
                lines.append(f"  - {f.location()}: {f.message}")
                if f.hint:
                    lines.append(f"    fix: {f.hint}")
        lines.append(summary_line(self.errors, self.warnings))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [asdict(f) for f in self.findings],
        }


def summary_line(errors: Sequence[Finding], warnings: Sequence[Finding]) -> str:
    verdict = "data is NOT usable" if errors else "data is usable"
    return f"{len(errors)} error(s), {len(warnings)} warning(s): {verdict}."
