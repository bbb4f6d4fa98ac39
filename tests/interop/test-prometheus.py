#!/usr/bin/python3
# test-prometheus.py: our /metrics against the real Prometheus (issue 15)
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   test-prometheus.py KV_PLUGIN KV_SERVER [METRICS_HOST]
#
# 1. Starts examples/kv/kv-plugin and kv-server with --metrics on
#    127.0.0.1:0 (each prints its URL as its first stdout line), makes known
#    calls (Put, Gets, a Put refused with invalid_argument), fetches
#    /metrics and checks it with `promtool check metrics` (which also lints
#    names, units and HELP). With METRICS_HOST (tests/interop/metrics-host.c):
#    starts two more kv-plugins and the host, whose /metrics carries its
#    two CpClients' series (client families, one plugin label each) next
#    to its server's; checks it with promtool and the counts of the calls
#    it made.
# 2. Starts a `prometheus` of its own (a temporary config scraping the
#    plugin every second, --storage.tsdb.path in a temporary directory,
#    --web.listen-address on a free 127.0.0.1 port) and asks its HTTP API
#    (/api/v1/query) until the counts scraped match the calls made, within
#    30 s. Prints each PromQL query and its answer.
# Every process it starts is stopped by PID. Exits 77 (skip) when
# Prometheus is not installed (scripts/dev setup installs it,
# data/debian-packages.txt), 1 on any failure.

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

WAIT_SECONDS = 30
N_GETS = 5


def log(*args):
    print(*args, flush=True)


def fail(message):
    log("FAIL:", message)
    sys.exit(1)


class Peer:
    """A server started with --listen 127.0.0.1:0; its URL is its first stdout line."""

    def __init__(self, name, argv, env, tmp):
        self.name = name
        # stderr to a file: a pipe nobody reads could fill and block the server.
        self.err_path = os.path.join(tmp, name + ".err")
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err,
                                         env=env, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            with open(self.err_path) as err:
                fail(f"{name} did not print its URL: {err.read()[-2000:]}")
        log(f"{name}: {self.url} (pid {self.proc.pid})")

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stdout.close()


def post(url, procedure, body):
    """A unary Connect call with a JSON body; returns (status, body)."""
    request = urllib.request.Request(url + procedure, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Connect-Protocol-Version": "1"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.headers.get("Content-Type"), response.read().decode()


def make_calls(url):
    status, _ = post(url, "/kv.v1.KVService/Put", {"key": "hello", "value": "d29ybGQ="})
    if status != 200:
        fail(f"Put answered {status}")
    for _ in range(N_GETS):
        status, body = post(url, "/kv.v1.KVService/Get", {"key": "hello"})
        if status != 200 or json.loads(body).get("found") is not True:
            fail(f"Get answered {status} {body!r}")
    status, body = post(url, "/kv.v1.KVService/Put", {"key": ""})
    if status != 400 or json.loads(body).get("code") != "invalid_argument":
        fail(f"Put with an empty key answered {status} {body!r}")


def promtool_check(name, url, tmp):
    status, content_type, text = get(url + "/metrics")
    if status != 200 or not content_type.startswith("text/plain; version=0.0.4"):
        fail(f"{name} /metrics: {status} {content_type}")
    path = os.path.join(tmp, name + ".metrics")
    with open(path, "w") as f:
        f.write(text)
    for line in text.splitlines():
        if line.startswith("connectplugin_server_calls_total") or line.startswith("connectplugin_plugin"):
            log("  " + line)
    with open(path) as f:
        result = subprocess.run(["promtool", "check", "metrics"], stdin=f,
                                capture_output=True, text=True)
    log(f"$ promtool check metrics < {name}.metrics  (exit {result.returncode})")
    if result.stdout.strip():
        log(result.stdout.strip())
    if result.stderr.strip():
        log(result.stderr.strip())
    if result.returncode != 0:
        fail(f"promtool check metrics failed on {name}'s /metrics")
    return text


def check_host(metrics_host, kv_plugin, env, tmp, peers):
    """A host with two clients (kv-1, kv-2): promtool and the client counts."""
    plugins = []
    for i in (1, 2):
        plugins.append(Peer(f"kv-plugin-{i}", [kv_plugin, "--listen", "127.0.0.1:0"], env, tmp))
        peers.append(plugins[-1])
    host = Peer("metrics-host", [metrics_host] + [p.url for p in plugins], env, tmp)
    peers.append(host)
    text = promtool_check(host.name, host.url, tmp)
    families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    if len(families) != len(set(families)):
        fail(f"a family is declared twice in the host's /metrics: {families}")
    expected = {
        'connectplugin_client_calls_total{plugin="kv-1",service="kv.v1.KVService",method="Get",code="ok"}': 4,
        'connectplugin_client_calls_total{plugin="kv-2",service="kv.v1.KVService",method="Get",code="ok"}': 1,
        'connectplugin_client_plugin_health{plugin="kv-1",state="healthy"}': 1,
        'connectplugin_client_circuit_state{plugin="kv-2",state="closed"}': 1,
    }
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines()
                   if line and not line.startswith("#"))
    for series, value in expected.items():
        log(f"  {series} {samples.get(series)}")
        if float(samples.get(series, "nan")) != value:
            fail(f"host /metrics: {series} is {samples.get(series)}, not {value}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(prometheus_url, promql):
    url = prometheus_url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    _, _, text = get(url, timeout=5)
    answer = json.loads(text)
    if answer.get("status") != "success":
        fail(f"Prometheus answered {text}")
    return answer["data"]["result"], text


def wait_for(prometheus_url, promql, check, deadline):
    """Asks @promql until check(result) holds; prints the query and answers."""
    log(f"PromQL: {promql}")
    text = None
    while time.monotonic() < deadline:
        try:
            result, text = query(prometheus_url, promql)
        except (urllib.error.URLError, ConnectionError, OSError):
            result = None  # Prometheus is still starting
        if result is not None and check(result):
            log(f"answer: {text}")
            return result
        time.sleep(0.5)
    log(f"last answer: {text}")
    fail(f"no expected answer to {promql} within {WAIT_SECONDS} s")


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__ or "usage: test-prometheus.py KV_PLUGIN KV_SERVER [METRICS_HOST]",
              file=sys.stderr)
        return 2
    kv_plugin, kv_server = sys.argv[1:3]
    metrics_host = sys.argv[3] if len(sys.argv) == 4 else None
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            log(f"SKIP: {tool} is not installed (scripts/dev setup installs Debian's prometheus)")
            return 77

    env = dict(os.environ)
    for name in ("CONNECTPLUGIN_LISTEN", "PORT", "HOST_URL"):
        env.pop(name, None)

    peers = []
    prometheus = None
    tmp = tempfile.mkdtemp(prefix="cp-prometheus.")
    try:
        # 1. promtool on both servers' /metrics.
        plugin = Peer("kv-plugin", [kv_plugin, "--listen", "127.0.0.1:0", "--metrics"], env, tmp)
        peers.append(plugin)
        server = Peer("kv-server", [kv_server, "--listen", "127.0.0.1:0", "--metrics"], env, tmp)
        peers.append(server)
        for peer in peers:
            make_calls(peer.url)
            promtool_check(peer.name, peer.url, tmp)
        server.stop()
        if metrics_host is not None:
            check_host(metrics_host, kv_plugin, env, tmp, peers)

        # 2. Prometheus scraping the plugin.
        target = urllib.parse.urlparse(plugin.url).netloc
        port = free_port()
        config = os.path.join(tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: connectplugin
    static_configs:
      - targets: ['{target}']
""")
        prometheus_log = open(os.path.join(tmp, "prometheus.log"), "w")
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config}",
             f"--storage.tsdb.path={os.path.join(tmp, 'data')}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=prometheus_log, stderr=subprocess.STDOUT)
        prometheus_url = f"http://127.0.0.1:{port}"
        log(f"prometheus: {prometheus_url} (pid {prometheus.pid}), scraping {target} every 1 s")
        deadline = time.monotonic() + WAIT_SECONDS

        def by_method(result):
            return {r["metric"].get("method"): float(r["value"][1]) for r in result}

        wait_for(prometheus_url, 'up{job="connectplugin"}',
                 lambda r: len(r) == 1 and r[0]["value"][1] == "1", deadline)
        wait_for(prometheus_url,
                 'sum by (method) (connectplugin_server_calls_total{service="kv.v1.KVService"})',
                 lambda r: by_method(r) == {"Get": N_GETS, "Put": 2}, deadline)
        wait_for(prometheus_url,
                 'connectplugin_server_calls_total{service="kv.v1.KVService",method="Put",code="invalid_argument"}',
                 lambda r: len(r) == 1 and float(r[0]["value"][1]) == 1, deadline)
        wait_for(prometheus_url,
                 'histogram_quantile(0.5, sum by (le) (connectplugin_server_call_duration_seconds_bucket'
                 '{service="kv.v1.KVService",method="Get"}))',
                 lambda r: len(r) == 1 and 0 < float(r[0]["value"][1]) <= 10, deadline)
        wait_for(prometheus_url, 'connectplugin_plugin_health{state="healthy"}',
                 lambda r: len(r) == 1 and r[0]["value"][1] == "1", deadline)
        log("all checks passed")
        return 0
    finally:
        if prometheus is not None:
            if prometheus.poll() is None:
                os.kill(prometheus.pid, signal.SIGTERM)
                try:
                    prometheus.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.kill(prometheus.pid, signal.SIGKILL)
                    prometheus.wait()
            log(f"prometheus stopped (pid {prometheus.pid}, exit {prometheus.returncode})")
            if prometheus.returncode not in (0, -signal.SIGTERM):
                with open(os.path.join(tmp, "prometheus.log")) as f:
                    log(f.read()[-3000:])
        for peer in peers:
            peer.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
