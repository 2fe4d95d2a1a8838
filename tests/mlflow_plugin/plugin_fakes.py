"""Simulated hardware for the plugin tests: constant power per component, exact energies."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from carbonledger.measure.base import J_PER_KWH, ComponentEnergy, WindowResult

DEFAULT_POWER_W = {"gpu": 300.0, "cpu": 60.0, "ram": 6.0}
METHODS = {
    "gpu": ("nvml-energy-counter", True),
    "cpu": ("rapl", True),
    "ram": ("ram-w-per-gb-estimate", False),
}


@dataclass
class FakeHardware:
    def as_tags(self) -> dict[str, str]:
        return {
            "carbon.gpu_model": "NVIDIA H100 80GB HBM3",
            "carbon.gpu_count": "1",
            "carbon.cpu_model": "Fake EPYC 9000",
            "carbon.cpu_count": "2",
            "carbon.ram_gb": "16.0",
        }


@dataclass
class FakeWindow:
    meter: FakeMeter
    start_s: float
    closed: bool = False

    def read(self) -> WindowResult:
        self.meter.reads += 1
        now = time.time()
        dur = now - self.start_s
        comps = {
            c: ComponentEnergy(
                component=c,  # type: ignore[arg-type]
                energy_kwh=p * dur / J_PER_KWH,
                method=METHODS[c][0],
                measured=METHODS[c][1],
                avg_power_w=p,
                peak_power_w=p,
            )
            for c, p in self.meter.power_w.items()
        }
        return WindowResult(self.start_s, now, comps)

    def close(self) -> WindowResult:
        self.closed = True
        return self.read()


@dataclass
class FakeMeter:
    """A Meter whose devices draw constant power: energy = power x time, exactly."""

    power_w: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_POWER_W))
    windows: list[FakeWindow] = field(default_factory=list)
    reads: int = 0
    notes: tuple[str, ...] = ()
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def total_power_w(self) -> float:
        return sum(self.power_w.values())

    def open_window(self) -> FakeWindow:
        w = FakeWindow(self, time.time())
        self.windows.append(w)
        return w

    def hardware(self) -> FakeHardware:
        return FakeHardware()


class TcpProxy:
    """A loopback TCP proxy in front of the mlflow server: ``down()`` makes the server vanish,
    ``hang()`` makes it accept connections and never answer (a slow server)."""

    def __init__(self, target_port: int) -> None:
        import socket

        self.target_port = target_port
        self.mode = "up"
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.sock.listen(64)
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "down":
                client.close()
                continue
            self._conns.append(client)
            if self.mode == "hang":
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._conns.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b) -> None:  # type: ignore[no-untyped-def]
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        for c in self._conns:  # drop kept-alive connections so the next request sees the mode
            try:
                c.close()
            except OSError:
                pass
        self._conns.clear()

    def close(self) -> None:
        self.sock.close()
        self.set_mode("down")


class SlowHttpServer:
    """A loopback HTTP server standing in for a slow tracking server: every request is answered
    after ``delay_s`` (``hang=True``: accepted and never answered). Records request paths."""

    def __init__(self, delay_s: float = 0.0, *, hang: bool = False) -> None:
        import http.server

        outer = self
        self.delay_s = delay_s
        self.hang = hang
        self.paths: list[str] = []
        self._release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.paths.append(self.path.split("?")[0])
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if outer.hang:
                    outer._release.wait(30)
                    return
                time.sleep(outer.delay_s)
                body = b'{"run": {"data": {"metrics": []}}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815 - http.server's names

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> SlowHttpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
