"""A local HTTP server that keeps GPT-SoVITS ``api_v2.py``'s documented ``/tts`` contract.

No GPT-SoVITS model runs offline, so this server answers the way the real one does
(RVC-Boss/GPT-SoVITS, ``api_v2.py``): ``GET /tts?...`` or ``POST /tts`` with a JSON body;
the same parameter checks, in the same order, with HTTP 400 and ``{"message": ...}``
on a bad request; ``{"message": "tts failed", "Exception": ...}`` when synthesis fails
(a reference path that does not exist, a reference outside 3 to 10 seconds); on success
a real WAV at 32 kHz, the sample rate of GPT-SoVITS v2 models.

The "synthesis" repeats the reference recording for about 0.3 s per word of the text,
so the answer really is made from the voice it was given. Standard library, numpy and
soundfile only.

Example::

    with SovitsServer() as server:
        os.environ["PATCHBAY_GPT_SOVITS_URL"] = server.url
        ...
        assert server.requests[0]["text_lang"] == "en"
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import soundfile

__all__ = ["CannedAnswer", "SovitsServer"]

V1_LANGUAGES = ("auto", "en", "zh", "ja", "all_zh", "all_ja")
V2_LANGUAGES = ("auto", "auto_yue", "en", "zh", "ja", "yue", "ko", "all_zh", "all_ja", "all_yue", "all_ko")
CUT_METHODS = ("cut0", "cut1", "cut2", "cut3", "cut4", "cut5")
MEDIA_TYPES = ("wav", "raw", "ogg", "aac")
OUTPUT_RATE = 32_000
SECONDS_PER_WORD = 0.3


@dataclass(frozen=True)
class CannedAnswer:
    """An answer sent instead of synthesis, for a client's error paths (a 5xx, a wrong content type)."""

    status: int
    body: bytes
    content_type: str


class SovitsServer:
    """GPT-SoVITS's api_v2 ``/tts`` on 127.0.0.1, from a daemon thread.

    Args:
        version: "v2" (the default, with Korean and Cantonese) or "v1" (fewer languages),
            as the real server's config decides which languages it accepts.
    """

    def __init__(self, version: str = "v2") -> None:
        self.languages = V1_LANGUAGES if version == "v1" else V2_LANGUAGES
        self.version = version
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._canned: deque[CannedAnswer] = deque()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SovitsServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="sovits", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> SovitsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("SovitsServer is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every /tts request's parameters, in arrival order."""
        with self._lock:
            return list(self._requests)

    def answer_next(self, status: int, body: bytes | str, content_type: str) -> None:
        """Answer the next /tts request with this, whatever it asks."""
        data = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._canned.append(CannedAnswer(status, data, content_type))

    # -- the contract ---------------------------------------------------------------
    def handle_tts(self, req: dict[str, Any]) -> tuple[int, bytes, str]:
        with self._lock:
            self._requests.append(dict(req))
            canned = self._canned.popleft() if self._canned else None
        if canned is not None:
            return canned.status, canned.body, canned.content_type
        problem = self._check_params(req)
        if problem is not None:
            return _json(400, {"message": problem})
        streaming = req.get("streaming_mode", False)
        if streaming not in (0, 1, 2, 3, True, False):
            return _json(400, {"message": "the value of streaming_mode must be 0, 1, 2, 3(int) or true/false(bool)"})
        try:
            rate, samples = self._synthesize(req)
        except (OSError, ValueError, RuntimeError) as exc:
            return _json(400, {"message": "tts failed", "Exception": str(exc)})
        media_type = req.get("media_type", "wav")
        if media_type == "raw":
            return 200, (samples * 32767).astype("<i2").tobytes(), "audio/raw"
        if media_type == "aac":
            return 200, _aac(samples, rate), "audio/aac"
        buffer = io.BytesIO()
        soundfile.write(buffer, samples, rate, format=media_type.upper())
        return 200, buffer.getvalue(), f"audio/{media_type}"

    def _check_params(self, req: dict[str, Any]) -> str | None:
        if req.get("ref_audio_path") in (None, ""):
            return "ref_audio_path is required"
        if req.get("text") in (None, ""):
            return "text is required"
        text_lang = req.get("text_lang")
        if text_lang in (None, ""):
            return "text_lang is required"
        if str(text_lang).lower() not in self.languages:
            return f"text_lang: {text_lang} is not supported in version {self.version}"
        prompt_lang = req.get("prompt_lang")
        if prompt_lang in (None, ""):
            return "prompt_lang is required"
        if str(prompt_lang).lower() not in self.languages:
            return f"prompt_lang: {prompt_lang} is not supported in version {self.version}"
        if req.get("media_type", "wav") not in MEDIA_TYPES:
            return f"media_type: {req.get('media_type')} is not supported"
        if req.get("text_split_method", "cut5") not in CUT_METHODS:
            return f"text_split_method:{req.get('text_split_method')} is not supported"
        return None

    def _synthesize(self, req: dict[str, Any]) -> tuple[int, np.ndarray]:
        path = str(req["ref_audio_path"])
        if not os.path.exists(path):
            raise ValueError(f"{path} not exists")
        reference, rate = soundfile.read(path, dtype="float32", always_2d=True)
        mono = reference.mean(axis=1)
        if not 3 * rate <= len(mono) <= 10 * rate:
            raise OSError("the reference audio is outside the 3-10 second range, please change it")
        # Resample to 32 kHz by linear interpolation, then repeat it for ~0.3 s a word.
        positions = np.arange(0, len(mono) - 1, rate / OUTPUT_RATE)
        voice = np.interp(positions, np.arange(len(mono)), mono).astype(np.float32)
        length = int(max(1, len(str(req["text"]).split())) * SECONDS_PER_WORD * OUTPUT_RATE)
        repeats = -(-length // len(voice))
        return OUTPUT_RATE, np.tile(voice, repeats)[:length]


def _aac(samples: np.ndarray, rate: int) -> bytes:
    """ADTS AAC through the ffmpeg command, as the real server does it."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    command = ["ffmpeg", "-loglevel", "error", "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0"]
    command += ["-c:a", "aac", "-b:a", "192k", "-vn", "-f", "adts", "pipe:1"]
    return subprocess.run(command, input=pcm, capture_output=True, check=True).stdout


def _json(status: int, body: dict[str, Any]) -> tuple[int, bytes, str]:
    return status, json.dumps(body).encode(), "application/json"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, sovits: SovitsServer) -> None:
        self.sovits = sovits
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/tts":
            self._send(*_json(404, {"detail": "Not Found"}))
            return
        req: dict[str, Any] = dict(parse_qsl(parts.query))
        for key in ("text_lang", "prompt_lang"):
            if key in req:
                req[key] = req[key].lower()
        if "streaming_mode" in req:
            raw = req["streaming_mode"].lower()
            req["streaming_mode"] = {"true": True, "false": False}.get(raw, int(raw) if raw.isdigit() else raw)
        self._send(*self.server.sovits.handle_tts(req))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if urlsplit(self.path).path != "/tts":
            self._send(*_json(404, {"detail": "Not Found"}))
            return
        try:
            req = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(*_json(422, {"detail": "request body is not JSON"}))
            return
        if not isinstance(req, dict):
            self._send(*_json(422, {"detail": "request body must be an object"}))
            return
        self._send(*self.server.sovits.handle_tts(req))

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
