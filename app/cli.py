"""The `pricer` command. Each area registers its own commands; heavy imports stay inside them,
so `pricer --help` is quick and a stage needs only its own extras installed."""

from __future__ import annotations

import importlib
import sys

import typer

cli = typer.Typer(
    name="pricer",
    help="Pricer: curate, evaluate, train and serve a product price estimator.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# Each module has `register(cli: typer.Typer) -> None`.
COMMAND_MODULES = (
    "app.data.commands",         # curate, data chart
    "app.estimators.commands",   # fit
    "app.evaluation.commands",   # evaluate, leaderboard
    "app.index.commands",        # index build (retrieval)
    "app.evaluation.compare",    # compare (two per-item reports, paired)
    "app.ensemble.commands",     # ensemble fit, ensemble show
    "app.store.commands",        # model prepare, model list
    "app.pricing.commands",      # model needed (the bases the active bundle reads)
    "app.training.commands",     # train, merge
    "app.api.commands",          # serve
    "app.fleet.commands",        # fleet show, fleet activate (the desired state in the store)
    "app.batch.commands",        # price (catalog files on Ray Data, resumable)
    "app.build.commands",        # build RECIPE (a DVC pipeline to a measured, promoted bundle), build-step
    "app.bench.commands",        # bench <name>: every benchmark (and the old bench-<name>, index bench, hidden)
)

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(cli)


def main() -> None:
    from app.runtime.extras import install_hint
    from app.runtime.processes import exit_on_sigterm

    exit_on_sigterm()  # SIGTERM runs the cleanup Ctrl-C runs: no engine or server outlives a command
    try:
        cli()
    except ModuleNotFoundError as error:  # a command whose extra is not installed: say which, no traceback
        hint = install_hint(error)
        if hint is None:
            raise
        print(hint, file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
