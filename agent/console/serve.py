"""`evidence-agent console`: serve the dock console with uvicorn (its own process and user)."""

from __future__ import annotations

import logging
import os
import pwd

from agent.config.loader import AgentConfig

logger = logging.getLogger(__name__)


def serve(cfg: AgentConfig) -> int:
    import uvicorn

    try:
        me = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        me = f"#{os.geteuid()}"
    if me != cfg.console.login:
        logger.warning(
            "the console runs as %s but console.login is %r: the daemon's gate will refuse "
            "every console request until they match (docs/console.md)",
            me,
            cfg.console.login,
        )

    from agent.console.web import build_app

    c = cfg.console
    config = uvicorn.Config(
        build_app(cfg),
        host=c.bind,
        port=c.port,
        ssl_certfile=str(c.tls_cert_file) if c.tls_cert_file else None,
        ssl_keyfile=str(c.tls_key_file) if c.tls_key_file else None,
        access_log=False,  # officer ids in query strings stay out of the journal
        log_config=None,  # the agent's own logging (agent/cli/logsetup.py)
        proxy_headers=False,
        server_header=False,
    )
    scheme = "https" if c.tls_cert_file else "http"
    logger.info("dock console on %s://%s:%d (gate %s)", scheme, c.bind, c.port, cfg.api.socket)
    uvicorn.Server(config).run()
    return 0
