"""The built-in audio tools, called directly on real sine-wave recordings stored as artifacts."""

from __future__ import annotations

import numpy as np
import pytest
from tool_samples import decode_audio, decode_image, peak_frequency, sine

from patchbay import InputError
from patchbay.tools.builtin.audio import (
    MIX_TAIL_S,
    SPECTROGRAM_HEIGHT,
    SPECTROGRAM_WIDTH,
    audio_concatenate,
    audio_convert,
    audio_duration,
    audio_mix,
    audio_resample,
    audio_spectrogram,
    audio_trim,
)

PCM16_STEP = 1 / 32768


# -- trim ------------------------------------------------------------------------
def test_trim_keeps_the_samples_between_start_and_end(stored_audio):
    tone = sine(440, 1.0, 16_000)
    samples, rate, fmt = decode_audio(audio_trim(stored_audio(tone, 16_000), start=0.25, end=0.75))
    assert (rate, fmt, samples.shape) == (16_000, "WAV", (8_000, 1))
    np.testing.assert_allclose(samples, tone[4_000:12_000], atol=2 * PCM16_STEP)


def test_trim_without_end_keeps_the_rest(stored_audio):
    stereo = stored_audio(sine(440, 2.0, 8_000, channels=2), 8_000)
    samples, _, _ = decode_audio(audio_trim(stereo, start=1.5))
    assert samples.shape == (4_000, 2)


def test_trim_cuts_an_end_past_the_recording_back_to_its_length(stored_audio):
    samples, _, _ = decode_audio(audio_trim(stored_audio(sine(440, 1.0, 8_000), 8_000), start=0.5, end=30))
    assert len(samples) == 4_000


def test_trim_end_before_start_is_an_input_error(stored_audio):
    with pytest.raises(InputError, match=r"end \(0.2 s\) must be after start \(0.5 s\)"):
        audio_trim(stored_audio(sine(440, 1.0, 8_000), 8_000), start=0.5, end=0.2)


def test_trim_start_past_the_end_names_the_duration(stored_audio):
    with pytest.raises(InputError, match=r"start \(3.0 s\) is not before the end of the 1.000 s recording"):
        audio_trim(stored_audio(sine(440, 1.0, 8_000), 8_000), start=3.0)


def test_trim_negative_start_is_an_input_error(stored_audio):
    with pytest.raises(InputError, match="start must be 0 or more seconds"):
        audio_trim(stored_audio(sine(440, 1.0, 8_000), 8_000), start=-1.0)


# -- concatenate ---------------------------------------------------------------------
def test_concatenate_matches_the_second_to_the_first(stored_audio):
    first = stored_audio(sine(300, 1.0, 16_000), 16_000)  # mono, 16 kHz
    second = stored_audio(sine(1_000, 0.5, 44_100, channels=2), 44_100)  # stereo, 44.1 kHz
    samples, rate, fmt = decode_audio(audio_concatenate(first, second))
    assert (rate, fmt, samples.shape) == (16_000, "WAV", (24_000, 1))
    assert peak_frequency(samples[:16_000], rate) == pytest.approx(300, abs=2)
    assert peak_frequency(samples[16_000:], rate) == pytest.approx(1_000, abs=4)


def test_concatenate_copies_mono_into_every_channel(stored_audio):
    first = stored_audio(sine(300, 0.5, 8_000, channels=2), 8_000)
    second = stored_audio(sine(500, 0.25, 8_000), 8_000)
    samples, _, _ = decode_audio(audio_concatenate(first, second))
    assert samples.shape == (6_000, 2)
    np.testing.assert_array_equal(samples[4_000:, 0], samples[4_000:, 1])


def test_concatenate_refuses_a_text_file(stored_audio, stored_bytes):
    note = stored_bytes(b"hello, this is text pretending to be sound\n", "audio/wav")
    with pytest.raises(InputError, match=r"is not audio that can be decoded \(audio/wav\)"):
        audio_concatenate(stored_audio(sine(300, 0.5, 8_000), 8_000), note)


# -- convert -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("format", "container", "mime"),
    [
        ("wav", "WAV", "audio/wav"),
        ("flac", "FLAC", "audio/flac"),
        ("ogg", "OGG", "audio/ogg"),
        ("mp3", "MP3", "audio/mpeg"),
    ],
)
def test_convert_writes_the_requested_format(stored_audio, format, container, mime):
    result = audio_convert(stored_audio(sine(440, 1.0, 22_050, channels=2), 22_050), format=format)
    samples, rate, fmt = decode_audio(result)
    assert (result.mime, fmt, rate) == (mime, container, 22_050)
    assert samples.shape[1] == 2
    assert len(samples) == pytest.approx(22_050, abs=2_048)  # MP3 pads with up to two frames
    assert peak_frequency(samples, rate) == pytest.approx(440, abs=2)


def test_convert_flac_is_lossless_and_smaller(stored_audio):
    wav = stored_audio(sine(440, 1.0, 16_000), 16_000)
    flac = audio_convert(wav, format="flac")
    original, _, _ = decode_audio(audio_convert(wav, format="wav"))
    samples, _, _ = decode_audio(flac)
    np.testing.assert_array_equal(samples, original)
    assert len(flac.read_bytes()) < len(wav.read_bytes())


# -- resample and duration --------------------------------------------------------------
def test_resample_changes_the_rate_and_keeps_duration_and_pitch(stored_audio):
    samples, rate, fmt = decode_audio(audio_resample(stored_audio(sine(440, 1.0, 44_100, 2), 44_100), 16_000))
    assert (rate, fmt, samples.shape) == (16_000, "WAV", (16_000, 2))
    assert peak_frequency(samples, rate) == pytest.approx(440, abs=2)


@pytest.mark.parametrize("rate", [0, 100, 500_000])
def test_resample_refuses_a_rate_out_of_range(stored_audio, rate):
    with pytest.raises(InputError, match="sample_rate must be between 4000 and 192000 Hz"):
        audio_resample(stored_audio(sine(440, 0.1, 8_000), 8_000), rate)


@pytest.mark.parametrize("format", ["WAV", "FLAC", "OGG"])
def test_duration_in_seconds(stored_audio, format):
    recording = stored_audio(sine(440, 1.5, 16_000), 16_000, format)
    assert audio_duration(recording) == pytest.approx(1.5, abs=0.005)


def test_duration_of_a_text_file_is_an_input_error(stored_bytes):
    note = stored_bytes(b"not a recording at all\n", "audio/wav")
    with pytest.raises(InputError, match=rf"{note.handle} is not audio that can be decoded"):
        audio_duration(note)


# -- mix a voice over music -------------------------------------------------------------------
def _level(samples: np.ndarray, freq: float, rate: int) -> float:
    """The amplitude of one frequency in the first channel (a single-bin Fourier transform)."""
    t = np.arange(len(samples)) / rate
    return float(2 * abs(np.mean(samples[:, 0] * np.exp(-2j * np.pi * freq * t))))


def test_mix_lays_quieter_looped_music_under_the_voice(stored_audio):
    voice = stored_audio(sine(300, 2.0, 16_000, amplitude=0.5), 16_000)  # mono 16 kHz, 2 s
    music = stored_audio(sine(1_000, 0.5, 44_100, channels=2, amplitude=0.8), 44_100)  # stereo 44.1 kHz, 0.5 s
    samples, rate, fmt = decode_audio(audio_mix(voice, music, music_volume=0.25))
    assert (rate, fmt, samples.shape[1]) == (44_100, "WAV", 2)  # the better rate and the wider layout
    assert len(samples) == round((2.0 + MIX_TAIL_S) * 44_100)
    middle = samples[44_100 // 2 : 3 * 44_100 // 2]  # past the fade-in, inside the voice, looped music
    assert _level(middle, 300, rate) == pytest.approx(0.5, abs=0.02)
    assert _level(middle, 1_000, rate) == pytest.approx(0.8 * 0.25, abs=0.02)
    assert np.abs(samples[-100:]).max() < 0.01  # faded out


def test_mix_scales_rather_than_clips_when_too_loud(stored_audio):
    loud = stored_audio(sine(300, 1.0, 8_000, amplitude=0.9), 8_000)
    samples, _, _ = decode_audio(audio_mix(loud, stored_audio(sine(500, 1.0, 8_000, amplitude=0.9), 8_000), 1.0))
    assert np.abs(samples).max() == pytest.approx(0.99, abs=0.01)


@pytest.mark.parametrize("volume", [-0.1, 1.5, float("nan")])
def test_mix_volume_out_of_range_is_an_input_error(stored_audio, volume):
    tone = stored_audio(sine(300, 0.2, 8_000), 8_000)
    with pytest.raises(InputError, match="music_volume must be between 0 and 1"):
        audio_mix(tone, tone, music_volume=volume)


# -- spectrogram ----------------------------------------------------------------------------------
def test_spectrogram_shows_a_tone_as_a_bright_line_at_its_pitch(stored_audio):
    picture = decode_image(audio_spectrogram(stored_audio(sine(2_000, 1.0, 16_000), 16_000)))
    assert picture.format == "PNG" and picture.mode == "RGB"
    assert picture.width > SPECTROGRAM_WIDTH and picture.height > SPECTROGRAM_HEIGHT
    plot = np.asarray(picture)[4 : 4 + SPECTROGRAM_HEIGHT, 52 : 52 + SPECTROGRAM_WIDTH].sum(axis=2)
    brightest_row = int(np.argmax(plot.mean(axis=1)))
    # 2 kHz of an 8 kHz range: a quarter of the way up from the bottom.
    assert brightest_row == pytest.approx(0.75 * SPECTROGRAM_HEIGHT, abs=4)


def test_spectrogram_of_an_hour_costs_no_more_than_a_short_one(stored_audio):
    hour = np.zeros((3_600 * 4_000, 1), np.float32)
    picture = decode_image(audio_spectrogram(stored_audio(hour, 4_000, "FLAC")))
    assert picture.width > SPECTROGRAM_WIDTH


def test_spectrogram_of_a_text_file_is_an_input_error(stored_bytes):
    with pytest.raises(InputError, match="is not audio that can be decoded"):
        audio_spectrogram(stored_bytes(b"just words\n", "audio/wav"))
