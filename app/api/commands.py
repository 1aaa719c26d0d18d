"""`pricer serve`: the FastAPI service on uvicorn, one worker (one engine per process).

Exit status: 0 after a clean stop (SIGTERM/SIGINT; uvicorn re-raises the signal after the drain, so
a supervisor may also see -15/-2 or 130), 1 when the start failed or the engine died (so that a
supervisor restarts the service)."""

from __future__ import annotations

import typer


def register(cli: typer.Typer) -> None:
    @cli.command("serve")
    def serve(
        host: str = typer.Option(None, help="Address to listen on (default PRICER_HOST or 127.0.0.1)."),
        port: int = typer.Option(None, help="Port to listen on (default PRICER_PORT or 8000)."),
    ) -> None:
        """Serve the price API: settings from PRICER_* variables; the base model is prepared on first use."""
        from app.config import Settings

        overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
        settings = Settings(**overrides)
        from app.api.logging_setup import setup_logging

        setup_logging(settings.log_level, settings.log_json)
        from app.api.app import create_app
        from app.api.server import build_server

        app = create_app(settings)
        server = build_server(app, settings)
        lifecycle = app.state.lifecycle

        def stop_on_failure(_error: BaseException) -> None:
            server.should_exit = True

        lifecycle.on_failure = stop_on_failure
        # The server drains on SIGTERM itself, then re-raises the signal under the handler it found:
        # the default one, so that the process ends as killed by SIGTERM (as before app.runtime.processes'
        # SystemExit handler, which the pricer entry point installs for every other command).
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            server.run()
        except KeyboardInterrupt:  # the SIGINT uvicorn re-raises once it has shut down
            raise typer.Exit(130) from None
        finally:
            if lifecycle.error is not None:
                what = "the engine died" if lifecycle.engine_died else "startup failed"
                typer.echo(f"pricer serve: {what}: {lifecycle.error}", err=True)
        if lifecycle.error is not None:
            raise typer.Exit(1)
