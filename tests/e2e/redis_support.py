"""Redis for the tests: servers of their own on free ports (to kill and restart), a
three-master cluster, and key prefixes on the machine's Redis, cleaned up after."""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

MACHINE_REDIS = "redis://127.0.0.1:6379/9"  # the machine's Redis; tests use DB 9 and a prefix of their own
START_DEADLINE_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cluster_port() -> int:
    """A free port whose cluster bus port (10,000 higher) is free too."""
    while True:
        port = free_port()
        if port <= 55535:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


def have_redis_server() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


def unique_prefix() -> str:
    return f"t{secrets.token_hex(4)}"


def wipe(url: str, prefix: str, cluster: RedisCluster | None = None) -> None:
    """Delete every key a test left under its prefix (a SCAN is fine in a test); on a
    cluster, node by node and key by key (keys of several slots)."""
    for node in [n.url for n in cluster.nodes] if cluster else [url]:
        client = redis.Redis.from_url(node)
        try:
            with client.pipeline(transaction=False) as pipe:
                for key in client.scan_iter(match=f"{prefix}:*", count=1000):
                    pipe.delete(key)
                pipe.execute()
        finally:
            client.close()


@dataclass(frozen=True)
class TlsFiles:
    """A CA, a server certificate it signed for 127.0.0.1 and a client certificate it signed."""

    ca: Path
    ca_key: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def make(cls, folder: Path) -> TlsFiles:
        """Generated with the openssl command line (RSA 2048, valid a day)."""
        folder.mkdir(parents=True, exist_ok=True)
        files = cls(*(folder / name for name in ("ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key")))
        openssl = ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        _openssl([*openssl, "-x509", "-keyout", str(files.ca_key), "-out", str(files.ca), "-subj", "/CN=isr test CA"])
        for cert, key, name, usage in ((files.cert, files.key, "127.0.0.1", "serverAuth"), (files.client_cert, files.client_key, "isr test client", "clientAuth")):
            _openssl([*openssl, "-keyout", str(key), "-out", str(folder / "request.csr"), "-subj", f"/CN={name}"])
            extensions = folder / "extensions.cnf"
            extensions.write_text(f"subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n")
            _openssl([
                "openssl", "x509", "-req", "-in", str(folder / "request.csr"), "-CA", str(files.ca), "-CAkey", str(files.ca_key),
                "-CAcreateserial", "-days", "1", "-out", str(cert), "-extfile", str(extensions),
            ])  # fmt: skip
        return files


def _openssl(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command[:3])} failed: {done.stderr.strip()}")


def have_tls() -> bool:
    """Whether redis-server was built with TLS (it then knows --tls-port) and openssl is installed."""
    if not have_redis_server() or shutil.which("openssl") is None:
        return False
    probe = subprocess.run(["redis-server", "--port", "0", "--tls-port", "0", "--test-memory"], capture_output=True, text=True, timeout=10, check=False)
    return "tls-port" not in (probe.stdout + probe.stderr)


@dataclass
class RedisServer:
    """A redis-server subprocess on a port of its own, without persistence; with `tls`, that
    port speaks TLS only (certificates of `tls`; clients need not present one unless `args`
    say `--tls-auth-clients yes`)."""

    folder: Path
    port: int = field(default_factory=free_port)
    args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    tls: TlsFiles | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        if self.tls:
            command[1:3] = ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            command += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.tls.ca)]
        with open(self.folder / "redis.log", "ab") as log:
            self.proc = subprocess.Popen([*command, "--dir", str(self.folder), *self.args], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_DEADLINE_S
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill9()
                log_tail = (self.folder / "redis.log").read_text().splitlines()[-20:]
                raise AssertionError(f"redis-server on {self.port} did not start:\n" + "\n".join(log_tail))
            time.sleep(0.02)
        return self

    def answers(self) -> bool:
        tls: dict[str, object] = {}
        if self.tls:
            tls = {"ssl": True, "ssl_ca_certs": str(self.tls.ca), "ssl_certfile": str(self.tls.client_cert), "ssl_keyfile": str(self.tls.client_key)}
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0), **tls)  # type: ignore[arg-type]
        try:
            return bool(client.ping())
        except (redis.AuthenticationError, redis.ResponseError):
            return True  # it answers, asking for a password
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def pause(self) -> None:
        """SIGSTOP: connections still open but nothing answers, as a Redis on a hung host."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        self.kill9()


@dataclass
class RedisCluster:
    """Three masters with --cluster-enabled, joined by `redis-cli --cluster create`."""

    nodes: list[RedisServer]

    @classmethod
    def start(cls, folder: Path, masters: int = 3) -> RedisCluster:
        cluster = cls([])
        try:
            for n in range(masters):
                node = RedisServer(folder / f"node{n}", cluster_port(), args=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"))
                cluster.nodes.append(node.start())
        except BaseException:
            cluster.stop()  # the nodes already started
            raise
        nodes = cluster.nodes
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if created.returncode != 0:
            cluster.stop()
            raise AssertionError(f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}")
        deadline = time.monotonic() + START_DEADLINE_S
        while not all(cluster._ok(node) for node in nodes):
            if time.monotonic() > deadline:
                cluster.stop()
                raise AssertionError("the cluster did not reach cluster_state:ok")
            time.sleep(0.05)
        return cluster

    @staticmethod
    def _ok(node: RedisServer) -> bool:
        client = redis.Redis(port=node.port, socket_timeout=0.5)
        try:
            info = client.execute_command("CLUSTER INFO")
            state = info.get("cluster_state") if isinstance(info, dict) else None
            return state == "ok" or b"cluster_state:ok" in (info if isinstance(info, bytes) else b"")
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
