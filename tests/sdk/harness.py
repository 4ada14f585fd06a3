"""Shared by the SDK checks: a mock provider, the real freellmapi binary pointed at it with a
key per mocked platform, and a runner that reports every check and keeps going."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mock_provider import start  # noqa: E402

# Platform → (base path on the mock, a key in the platform's shape).
PLATFORMS = {
    "groq": ("/openai/v1", "gsk_sdk_check_key"),
    "google": ("/v1beta", "AIzaSdkCheckKey"),
    "mistral": ("/mistral/v1", "mistral_sdk_check_key"),
}


class Proxy:
    """The server under test; use as a context manager."""

    def __init__(self, binary):
        self.binary = os.path.abspath(binary)
        self.results = []

    def __enter__(self):
        self.mock = start()
        port = self.mock.server_address[1]
        self.data = tempfile.mkdtemp(prefix="freellmapi-sdk-")
        self.env = dict(os.environ)
        for platform, (base, _) in PLATFORMS.items():
            self.env[f"FREELLMAPI_UPSTREAM_{platform.upper()}"] = f"http://127.0.0.1:{port}{base}"
        for platform, (_, key) in PLATFORMS.items():
            self.cli("keys", "add", platform, "--label", "sdk", stdin=key + "\n")
        self.server = subprocess.Popen([self.binary, "--listen", "127.0.0.1:0", "--data-dir", self.data], env=self.env,
                                       stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.addr = self.ollama_addr = None
        for line in self.server.stderr:
            o = re.search(r"the Ollama API is served on http://(\S+)", line)
            if o:
                self.ollama_addr = o.group(1)
            m = re.search(r"listening on http://(\S+)", line)
            if m:
                self.addr = m.group(1)
                break
        assert self.addr, "the server did not start"
        threading.Thread(target=lambda: [None for _ in self.server.stderr], daemon=True).start()
        self.token = self.cli("token").stdout.strip()
        return self

    def cli(self, *args, stdin=""):
        return subprocess.run([self.binary, *args, "--data-dir", self.data], input=stdin, env=self.env,
                              capture_output=True, text=True, check=True)

    def check(self, name, fn):
        try:
            fn()
            self.results.append((name, None))
            print(f"ok   {name}")
        except Exception as e:  # noqa: BLE001 - report every failure and keep going
            self.results.append((name, e))
            print(f"FAIL {name}: {e!r}")

    def __exit__(self, *exc):
        self.server.terminate()
        code = self.server.wait(timeout=20)
        self.mock.shutdown()
        shutil.rmtree(self.data, ignore_errors=True)
        self.results.append(("clean shutdown", None if code == 0 else AssertionError(f"exit code {code}")))
        failed = sum(1 for _, e in self.results if e)
        print(f"{len(self.results) - failed} passed, {failed} failed")
        sys.exit(1 if failed else 0)
