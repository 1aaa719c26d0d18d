"""`pricer serve`: the FastAPI service on uvicorn, one worker (one engine per process)."""

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
        import uvicorn

        from app.api.app import create_app

        app = create_app(settings)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_config=None,  # logging_setup configured it
                access_log=False,  # the middleware logs each request with its id, route and duration
                lifespan="on",
                timeout_graceful_shutdown=30,
                timeout_keep_alive=30,
            )
        )
        lifecycle = app.state.lifecycle

        def stop_on_failure(_error: BaseException) -> None:
            server.should_exit = True

        lifecycle.on_failure = stop_on_failure
        server.run()
        if lifecycle.error is not None:
            typer.echo(f"pricer serve: startup failed: {lifecycle.error}", err=True)
            raise typer.Exit(1)
