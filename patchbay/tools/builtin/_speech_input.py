"""Open any recording (wav, mp3, flac, ogg, m4a, webm, or a video's sound track) as 16 kHz mono chunks.

Speech models want 16 kHz mono float samples. PyAV (FFmpeg's libraries, already a
faster-whisper dependency) decodes every common container and codec, so one decoder
serves both speech backends, and no ``ffmpeg`` binary is needed.

An hours-long recording is never held in memory whole: :func:`speech_chunks` decodes
the stream and hands out chunks of a bounded length (10 minutes is 38 MB), each cut
at the quietest moment near its end so that no word is split between two chunks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InputError

SAMPLE_RATE = 16_000
"""What Whisper models take: 16 kHz mono."""
_CUT_SEARCH_S = 10.0
"""How far back from a chunk's end to look for a quiet place to cut."""
_CUT_FRAME_S = 0.05


@dataclass(frozen=True)
class Recording:
    """What a file holds, found from its header without decoding the sound.

    Attributes:
        label: how error messages name the file (its handle, or its path).
        duration_s: the container's stated length; None when it does not say.
        has_video: whether there are moving pictures beside the sound (cover art does not count).
        codec: the sound track's codec, e.g. "aac" or "pcm_s16le".
    """

    label: str
    duration_s: float | None
    has_video: bool
    codec: str


def probe(path: Path, label: str) -> Recording:
    """Read a file's header: its length, its codec, and whether it is a video.

    Raises:
        InputError: the file is not a recording FFmpeg can open, or it has no sound track.
    """
    import av

    try:
        with av.open(str(path)) as container:
            audio = container.streams.audio
            video = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
            if not audio:
                what = "a video without a sound track" if video else "not a recording"
                raise InputError(f"{label} is {what}: there is no speech in it to transcribe")
            duration = container.duration / av.time_base if container.duration else None
            return Recording(label, duration, bool(video), audio[0].codec_context.name)
    except av.error.FFmpegError as exc:
        raise InputError(
            f"{label} is not audio or video that can be decoded (corrupt or unknown format): {exc}"
        ) from exc


def speech_chunks(
    path: Path,
    label: str,
    *,
    chunk_s: float,
    max_s: float,
) -> Iterator[tuple[float, np.ndarray]]:
    """Decode a recording's first sound track as 16 kHz mono float32, in chunks.

    Args:
        path: the file.
        label: how error messages name it.
        chunk_s: the longest chunk, in seconds; each is cut at the quietest
            50 ms within the last few seconds before that length.
        max_s: the longest recording accepted; decoding stops with an error
            past it (for containers whose header does not state a length).

    Yields:
        (offset in seconds from the start of the recording, samples) per chunk.

    Raises:
        InputError: the data is corrupt, or the recording is longer than ``max_s``.
    """
    import av

    chunk_len = max(int(chunk_s * SAMPLE_RATE), SAMPLE_RATE)
    max_len = int(max_s * SAMPLE_RATE)
    pending: list[np.ndarray] = []
    pending_len = 0
    offset = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in _frames(container, stream):
                for out in resampler.resample(frame):
                    piece = out.to_ndarray().reshape(-1)
                    pending.append(piece)
                    pending_len += len(piece)
                if offset + pending_len > max_len:
                    raise InputError(
                        f"{label} is longer than {_minutes(max_s)}, the most speech_to_text accepts; "
                        "cut it into parts with audio_trim, or raise PATCHBAY_SPEECH_TO_TEXT_MAX_MINUTES"
                    )
                while pending_len >= chunk_len:
                    samples = np.concatenate(pending)
                    cut = _quiet_cut(samples, chunk_len)
                    yield offset / SAMPLE_RATE, samples[:cut]
                    offset += cut
                    pending, pending_len = [samples[cut:]], len(samples) - cut
            for out in resampler.resample(None):
                pending.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError as exc:
        raise InputError(f"{label} could not be decoded past {offset / SAMPLE_RATE:.1f} s (corrupt?): {exc}") from exc
    rest = np.concatenate(pending) if pending else np.zeros(0, np.float32)
    if len(rest) or offset == 0:
        yield offset / SAMPLE_RATE, rest


def decode_mono(path: Path, label: str, max_s: float) -> tuple[np.ndarray, int]:
    """A short recording's first sound track, whole, as mono float32 at its own sample rate.

    Raises:
        InputError: the data is corrupt, has no sound, or lasts longer than ``max_s``.
    """
    import av

    pieces: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate or SAMPLE_RATE
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            length = 0
            for frame in _frames(container, stream):
                for out in resampler.resample(frame):
                    pieces.append(out.to_ndarray().reshape(-1))
                    length += pieces[-1].size
                if length > max_s * rate:
                    raise InputError(f"{label} lasts longer than {max_s:g} s")
            pieces.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    except av.error.FFmpegError as exc:
        raise InputError(f"{label} could not be decoded (corrupt?): {exc}") from exc
    samples = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    if samples.size == 0:
        raise InputError(f"{label} holds no sound")
    return samples, int(rate)


def _frames(container, stream) -> Iterator:
    """Decoded frames; a damaged packet in the middle is skipped, as players do."""
    import av

    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            continue


def _quiet_cut(samples: np.ndarray, chunk_len: int) -> int:
    """Where to end a chunk of at most ``chunk_len`` samples: the quietest 50 ms near its end."""
    frame = int(_CUT_FRAME_S * SAMPLE_RATE)
    search = min(int(_CUT_SEARCH_S * SAMPLE_RATE), chunk_len // 4)
    start = chunk_len - search
    window = samples[start:chunk_len]
    frames = len(window) // frame
    if frames < 2:
        return chunk_len
    energy = np.square(window[: frames * frame].reshape(frames, frame)).mean(axis=1)
    quietest = int(np.argmin(energy))
    return start + quietest * frame + frame // 2


def is_silent(samples: np.ndarray, floor_db: float = -60.0) -> bool:
    """True when the loudest sample is below ``floor_db`` dBFS: nothing a speech model could hear."""
    if samples.size == 0:
        return True
    peak = float(np.max(np.abs(samples)))
    return peak <= 10 ** (floor_db / 20)


def _minutes(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:g} minutes" if minutes < 120 else f"{minutes / 60:g} hours"


def describe_length(seconds: float) -> str:
    """``12.3 s`` or ``1 h 02 min`` for a header line."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    total = math.floor(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"
