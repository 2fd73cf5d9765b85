"""voice_clone: say a text in the user's own voice, through a GPT-SoVITS server's HTTP API.

GPT-SoVITS (github.com/RVC-Boss/GPT-SoVITS) clones a voice from a 3 to 10 second
reference recording and its transcript. patchbay talks to its ``api_v2.py`` server:
``POST /tts`` with ``text``, ``text_lang``, ``ref_audio_path``, ``prompt_text``,
``prompt_lang``, ``media_type`` and ``streaming_mode``; the answer is the WAV itself
(HTTP 200), or ``{"message": ...}`` with HTTP 400.

**How the reference reaches the server.** ``ref_audio_path`` is a path the *server*
opens on *its own* disk; the API cannot upload a file. patchbay writes the user's
recording as a WAV into a folder the server can read and sends the server's path to it:

* by default the server runs on the same machine: the folder is ``voice-refs/`` in the
  workspace, and the path sent is its absolute local path;
* for a server elsewhere, share a folder (NFS, a bind mount, ...) and set
  ``PATCHBAY_GPT_SOVITS_SHARED_DIR`` (the folder here) and ``PATCHBAY_GPT_SOVITS_SERVER_DIR``
  (the same folder as the server sees it).

``PATCHBAY_GPT_SOVITS_URL`` is the server (default ``http://127.0.0.1:9880``).

Only a recording the user attached can be cloned: a voice is personal, so voice_clone
refuses audio made by tools or found on disk, and its result is named as a cloned voice.
"""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

import soundfile

from ...errors import InputError, ToolError, TransientToolError
from ...media import Audio, File
from .._define import Tool
from .._spec import Availability, Resources, ToolContext
from ._speech_input import decode_mono, probe
from .speech import spoken_text

if TYPE_CHECKING:
    import httpx

URL_ENV = "PATCHBAY_GPT_SOVITS_URL"
DEFAULT_URL = "http://127.0.0.1:9880"
SHARED_DIR_ENV = "PATCHBAY_GPT_SOVITS_SHARED_DIR"
SERVER_DIR_ENV = "PATCHBAY_GPT_SOVITS_SERVER_DIR"
MIN_REFERENCE_S, MAX_REFERENCE_S = 3.0, 10.0
"""GPT-SoVITS refuses references outside 3 to 10 seconds; checked here first, with a clearer message."""
MAX_TEXT_CHARS = 5_000
REQUEST_TIMEOUT_S = 300.0

# GPT-SoVITS v2's language codes, and the names a planner may write instead.
_LANGUAGES = ("auto", "auto_yue", "en", "zh", "ja", "yue", "ko", "all_zh", "all_ja", "all_yue", "all_ko")
_LANGUAGE_NAMES = {
    "english": "en",
    "chinese": "zh",
    "mandarin": "zh",
    "japanese": "ja",
    "korean": "ko",
    "cantonese": "yue",
    "": "auto",
    "detect": "auto",
}


def server_url() -> str:
    return os.environ.get(URL_ENV, "").strip().rstrip("/") or DEFAULT_URL


class VoiceClone(Tool):
    """Speak a text in a voice cloned from the user's own short recording (GPT-SoVITS)."""

    name = "voice_clone"
    # A client: the model runs in the GPT-SoVITS server, which declares its own GPU.
    resources = Resources(cpus=0.2, memory_mb=100)
    timeout_s: ClassVar[float | None] = REQUEST_TIMEOUT_S + 30
    retries: ClassVar[int | None] = 1

    @classmethod
    def available(cls) -> Availability:
        """Always plannable (a server can be started any time); says so when none answers now."""
        url = server_url()
        if _listening(url):
            return Availability(True)
        return Availability(
            True, f"no GPT-SoVITS server answers at {url} right now; start api_v2.py there or set {URL_ENV}"
        )

    def setup(self) -> None:
        """Open one HTTP client for the process (connections are kept alive between calls)."""
        import httpx

        self.url = server_url()
        self.client = httpx.Client(timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=5.0))

    def run(
        self,
        text: str,
        reference_audio: File,
        ctx: ToolContext,
        reference_text: str = "",
        language: str = "auto",
        reference_language: str = "",
    ) -> Audio:
        """Say a text in the voice of the person heard in a short recording the user attached ("say this in my voice").

        Args:
            text: the words to say in the cloned voice.
            reference_audio: the user's own attached recording of the voice to clone, 3 to 10 seconds long.
            reference_text: the exact words spoken in reference_audio (it makes the voice far closer);
                empty: clone without it.
            language: the language of text: "en", "zh", "ja", "ko", "yue" or "auto" to detect.
            reference_language: the language spoken in reference_audio; empty: the same as language.

        Returns:
            The text spoken in the cloned voice, as WAV.

        Raises:
            InputError: the reference is not the user's attachment, is not 3-10 s of audio, or a language is unknown.
            ToolError: the GPT-SoVITS server is unreachable, refused the request or answered without audio.
        """
        words = spoken_text(text)
        if not words:
            raise InputError("voice_clone got an empty text: there is nothing to say")
        if len(words) > MAX_TEXT_CHARS:
            raise InputError(f"the text is {len(words)} characters long; voice_clone says at most {MAX_TEXT_CHARS}")
        text_lang = _language(language, "language")
        prompt_lang = _language(reference_language, "reference_language") if reference_language.strip() else text_lang
        _require_attachment(reference_audio)
        server_path = self._share_reference(reference_audio, ctx)
        payload = {
            "text": words,
            "text_lang": text_lang,
            "ref_audio_path": server_path,
            "prompt_text": spoken_text(reference_text),
            "prompt_lang": prompt_lang,
            "media_type": "wav",
            "streaming_mode": False,
            "text_split_method": "cut5",
        }
        wav = self._synthesize(payload)
        return Audio(data=wav, mime="audio/wav", name="cloned-voice-gpt-sovits.wav")

    def _share_reference(self, reference: File, ctx: ToolContext) -> str:
        """Write the reference as WAV where the server can read it; return the path as the server sees it."""
        label = reference.handle or "reference_audio"
        stated = probe(reference.path, label).duration_s
        # The header's length first, so a long file is refused without decoding it.
        if stated is not None and stated > MAX_REFERENCE_S + 1:
            raise InputError(_length_problem(label, stated))
        samples, rate = decode_mono(reference.path, label, max_s=MAX_REFERENCE_S + 1)
        if not MIN_REFERENCE_S <= samples.size / rate <= MAX_REFERENCE_S:
            raise InputError(_length_problem(label, samples.size / rate))
        shared = os.environ.get(SHARED_DIR_ENV, "").strip()
        folder = Path(shared) if shared else _workspace_folder(ctx)
        folder.mkdir(parents=True, exist_ok=True)
        filename = f"ref-{reference.handle or 'upload'}.wav"
        target = folder / filename
        if not target.is_file():
            buffer = io.BytesIO()
            soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
            partial = target.with_suffix(".part")
            partial.write_bytes(buffer.getvalue())
            partial.replace(target)
        server_dir = os.environ.get(SERVER_DIR_ENV, "").strip()
        return f"{server_dir.rstrip('/')}/{filename}" if server_dir else str(target.resolve())

    def _synthesize(self, payload: dict[str, object]) -> bytes:
        """POST /tts and return the WAV; every way it can go wrong becomes one clear error."""
        import httpx

        endpoint = f"{self.url}/tts"
        try:
            response = self.client.post(endpoint, json=payload)
        except httpx.ConnectError as exc:
            raise ToolError(
                f"no GPT-SoVITS server answers at {self.url} ({exc}); start it with "
                f"'python api_v2.py -a 127.0.0.1 -p 9880' in its folder, or set {URL_ENV} to where it runs"
            ) from exc
        except httpx.TimeoutException as exc:
            raise TransientToolError(f"the GPT-SoVITS server at {self.url} did not answer in time ({exc})") from exc
        except httpx.TransportError as exc:
            raise TransientToolError(f"the connection to GPT-SoVITS at {self.url} broke ({exc})") from exc
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if response.status_code != 200:
            reason = _error_reason(response)
            if response.status_code == 404:
                raise ToolError(
                    f"{endpoint} does not exist (HTTP 404): is {self.url} a GPT-SoVITS api_v2.py server? {reason}"
                )
            if response.status_code >= 500:
                raise ToolError(f"the GPT-SoVITS server failed (HTTP {response.status_code}): {reason}")
            raise ToolError(f"GPT-SoVITS refused the request (HTTP {response.status_code}): {reason}")
        if not content_type.startswith("audio/"):
            raise ToolError(
                f"{endpoint} answered with {content_type or 'no content type'}, not audio: is {self.url} a "
                "GPT-SoVITS api_v2.py server?"
            )
        try:
            info = soundfile.info(io.BytesIO(response.content))
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise ToolError(f"GPT-SoVITS answered with {content_type} data that is not a readable WAV: {exc}") from exc
        if info.frames == 0:
            raise ToolError("GPT-SoVITS answered with an empty recording")
        return response.content


def _require_attachment(reference: File) -> None:
    """Refuse to clone a voice from anything but a recording the user attached."""
    artifact = reference.artifact
    if artifact is None or not any(p.source == "attachment" for p in artifact.provenance):
        origin = "unknown"
        if artifact is not None and artifact.provenance:
            first = artifact.provenance[0]
            origin = f"made by {first.tool} (task {first.task_id})" if first.source == "task" else first.source
        raise InputError(
            f"voice_clone only clones a voice from a recording the user attached to this conversation; "
            f"{reference.handle or 'this audio'} is {origin}. Attach a 3-10 second recording of the voice"
        )
    if artifact.kind not in ("audio", "video"):
        raise InputError(f"{artifact.id} is {artifact.mime}, not a recording of a voice")


def _length_problem(label: str, seconds: float) -> str:
    return (
        f"{label} lasts {seconds:.1f} s; GPT-SoVITS needs a reference of {MIN_REFERENCE_S:g} to "
        f"{MAX_REFERENCE_S:g} seconds: attach a recording of that length"
    )


def _language(value: str, argument: str) -> str:
    code = value.strip().lower()
    code = _LANGUAGE_NAMES.get(code, code)
    if code not in _LANGUAGES:
        raise InputError(f"{argument} {value!r} is not a language GPT-SoVITS speaks; use en, zh, ja, ko, yue or auto")
    return code


def _error_reason(response: httpx.Response) -> str:
    """The ``message`` (and ``Exception``) of GPT-SoVITS's JSON error body, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        extra = f" ({body['Exception']})" if body.get("Exception") else ""
        return f"{body['message']}{extra}"
    text = response.text.strip()
    return text[:200] or "no explanation given"


def _workspace_folder(ctx: ToolContext) -> Path:
    if ctx.workspace is None:
        raise ToolError(f"voice_clone needs a workspace or {SHARED_DIR_ENV} to share the reference with the server")
    return ctx.workspace / "voice-refs"


def _listening(url: str, timeout_s: float = 0.3) -> bool:
    """One TCP connection attempt to the server; nothing is sent."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


TOOLS = [VoiceClone]
