"""``dealcast models ...``: the registry's history, comparisons and champion moves by hand.

``dealcast models`` lists the close model's versions (:mod:`pipelines.model_history`);
``compare A B`` scores two on the same backtest rows (:mod:`pipelines.model_compare`);
``promote VERSION`` and ``rollback [VERSION]`` move the champion pair with a reason, under
the same project lock as ``train``. A version that cannot serve exits 2 with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.catalog import PARAMS_FILE
from pipelines.cli_common import DataOpt, ParamsOpt, handled, load_params

models_app = typer.Typer(
    rich_markup_mode=None,
    help="Model history: list the registered versions with their backtest metrics, data "
    "fingerprint, training cutoff and whether they served; compare two on the same rows; "
    "promote or roll back the champion pair with a logged reason.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ReasonOpt = Annotated[
    str,
    typer.Option("--reason", help="Why (kept on the versions and in an MLflow run).",
                 show_default=False),
]  # fmt: skip


@models_app.callback()
@handled
def list_command(ctx: typer.Context, params: ParamsOpt = Path(PARAMS_FILE)) -> None:
    """List the close model's registered versions, newest first (* champion)."""
    if ctx.invoked_subcommand is not None:
        return
    from models.registry_history import format_history
    from pipelines.model_history import version_records

    p = load_params(params)
    typer.echo(format_history(version_records(p), model_name=p.evaluate.close_model_name))


@models_app.command("compare")
@handled
def compare_command(
    a: Annotated[str, typer.Argument(help="A close-model version (3 or v3).", show_default=False)],
    b: Annotated[str, typer.Argument(help="Another version.", show_default=False)],
    data: DataOpt = None,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Score two versions (and their next-stage partners) on the same rows: the test rows
    of the newer one's backtest, rebuilt from the CRM; print each one's log loss, AUC and
    ECE and the difference."""
    from pipelines.model_compare import compare_versions

    p = load_params(params)
    made = compare_versions(p, a, b, folder=data or p.paths.raw)
    typer.echo("\n".join(format_comparison(made, model_name=p.evaluate.close_model_name)))


def format_comparison(made, *, model_name: str) -> list[str]:
    """The lines ``compare`` prints."""
    first, second = made.sides
    head = (
        f"{model_name} {first.label} vs {second.label} on the same {made.rows:,} rows: "
        f"deals open at the snapshots after {made.cutoff.date()} (the newer backtest's test "
        f"window), outcomes as known at {made.data_end.date()}"
    )
    close = made.close.rename(index={"difference": f"{second.label} - {first.label}"})
    lines = [head, *(f"  {s.describe()}" for s in made.sides), "close model (p_win), rows "
             "with a known outcome:", _table(close)]  # fmt: skip
    if made.next_stage is not None:
        nxt = made.next_stage.rename(index={"difference": f"{second.label} - {first.label}"})
        lines += ["next-stage model, rows with a known next state:", _table(nxt)]
    return lines + [f"note: {n}" for n in made.notes]


def _table(frame) -> str:
    shown = frame.copy()
    shown["n"] = shown["n"].astype(int)
    text = shown.to_string(float_format=lambda v: f"{v:+.4f}" if v < 0 else f"{v:.4f}")
    return "\n".join(f"  {line}" for line in text.splitlines())


@models_app.command("promote")
@handled
def promote_command(
    version: Annotated[
        str, typer.Argument(help="Close-model version to serve.", show_default=False)
    ],  # fmt: skip
    reason: ReasonOpt = ...,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Make a version's pair the champion (both aliases), whatever the gate said."""
    _move(params, version, reason=reason, action="promote")


@models_app.command("rollback")
@handled
def rollback_command(
    version: Annotated[
        str | None,
        typer.Argument(
            help="Close-model version [default: the previous champion].", show_default=False
        ),
    ] = None,
    reason: ReasonOpt = ...,
    params: ParamsOpt = Path(PARAMS_FILE),
) -> None:
    """Put a former champion pair back (both aliases)."""
    _move(params, version, reason=reason, action="rollback")


def _move(params: Path, version: str | None, *, reason: str, action: str) -> None:
    from pipelines.lock import project_lock
    from pipelines.model_history import move_champion, rollback_target

    p = load_params(params)
    with project_lock(Path.cwd(), "train"):  # never while a train registers
        target = version if action == "promote" else rollback_target(p, version)
        moved = move_champion(p, str(target), reason=reason, action=action)
    typer.echo("\n".join(moved.lines(p.evaluate.model_names)))
