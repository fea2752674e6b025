"""A fork server for the local stack: imports the services' code once, then forks one process per service.

Each service process would otherwise spend over a second of CPU importing the same code
(FastAPI, SQLAlchemy, every contract's pydantic models, the cryptography); with sixteen of
them on a two-core machine that alone is most of ``renkei up``. Like gunicorn's
``--preload``, the zygote imports once and forks. Each service is still its own process in
its own session, with its own log, environment and port, running exactly what
``python -m shared.serve`` runs.

The zygote is single-threaded and never opens a database, event loop or connection, so a
fork of it starts clean. Protocol, one JSON object per line: the parent writes
``{"module": ..., "env": {...}, "log": path}``, the zygote answers ``{"pid": n}``. It exits
when its standard input closes; its children live on (they lead their own sessions).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import traceback
from pathlib import Path

import setproctitle


class Zygote:
    """The parent's end: start the zygote (it imports while the parent prepares), then fork services."""

    def __init__(self, modules: list[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "renkei.zygote", *modules],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
            text=True,
        )

    def fork(self, module: str, env: dict[str, str], log_path: Path) -> int:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps({"module": module, "env": env, "log": str(log_path)}) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the zygote exited (code {self.process.wait()}) before starting {module}")
        return json.loads(answer)["pid"]

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _child(module: str, env: dict[str, str], log: str) -> None:
    """In the forked process: become a service as ``python -m shared.serve module`` would."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL if sig != signal.SIGINT else signal.default_int_handler)
    os.environ.clear()
    os.environ.update(env)
    # What ps and top show: the service, not the zygote's command line.
    setproctitle.setproctitle(f"renkei {env.get('RENKEI_SERVICE', module)} {env.get('RENKEI_CITY', '')}".rstrip())
    from shared import serve

    serve.main([module])


def main(modules: list[str]) -> None:
    setproctitle.setproctitle("renkei zygote")  # also claims the title's memory before a child clears its environment
    for module in modules:
        importlib.import_module(module)
    importlib.import_module("shared.serve")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the stack stops
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _child(request["module"], request["env"], request["log"])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
