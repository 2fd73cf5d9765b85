"""Real speech made at test time (espeak-ng, ffmpeg), and the word error rate to judge transcripts by.

Nothing binary is committed: every recording is synthesized into the test's temp dir.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import soundfile

SENTENCE = "Please send the meeting notes to the whole team before Friday."
SECOND_SENTENCE = "The budget review moves to Monday morning."


def espeak(text: str, path: Path, voice: str = "en-us", words_per_minute: int = 130) -> Path:
    """Speak ``text`` into a WAV file with espeak-ng (22.05 kHz mono)."""
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(path), "--stdin"],
        input=text.encode(),
        check=True,
        capture_output=True,
    )
    return path


def ffmpeg(*args: str) -> None:
    """Run the ffmpeg command quietly; fail the test on an error."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True, capture_output=True)


def convert(source: Path, target: Path) -> Path:
    """Re-encode a recording; the target's extension picks the container and codec."""
    ffmpeg("-i", str(source), str(target))
    return target


def with_silence(source: Path, target: Path, before_s: float, after_s: float = 0.0) -> Path:
    """Pad a recording with digital silence (to make room for a chunk boundary)."""
    samples, rate = soundfile.read(source, dtype="float32", always_2d=True)
    pad = [np.zeros((round(s * rate), samples.shape[1]), np.float32) for s in (before_s, after_s)]
    soundfile.write(target, np.concatenate([pad[0], samples, pad[1]]), rate)
    return target


def join(first: Path, second: Path, target: Path, gap_s: float) -> Path:
    """Two recordings of one rate with ``gap_s`` seconds of silence between them."""
    a, rate = soundfile.read(first, dtype="float32", always_2d=True)
    b, rate_b = soundfile.read(second, dtype="float32", always_2d=True)
    assert rate == rate_b, "join expects recordings at one sample rate"
    gap = np.zeros((round(gap_s * rate), a.shape[1]), np.float32)
    soundfile.write(target, np.concatenate([a, gap, b]), rate)
    return target


def words(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level edit distance over the reference's length (punctuation and case ignored)."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1] / max(1, len(ref))
