#!/usr/bin/env bash
# Sets bisep up on a fresh machine: Debian packages it uses (only when missing), a virtual environment in
# .venv (override with BISEP_VENV), and the pinned Python packages. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${BISEP_VENV:-.venv}"
python="${PYTHON:-python3}"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "bisep setup: needs Python >= 3.11 (found: $("$python" --version 2>&1 || echo none)); set PYTHON=/path/to/python3.11" >&2
  exit 2
fi

# Debian packages, optional: the FluidR3 General MIDI soundfont gives the corpus a second rendering of every
# instrument (without it, the soundfont inside pretty_midi renders alone); ffmpeg extracts audio from videos
# for `bisep data music` and reads m4a/mp4/webm downloads; chromium and chromium-driver run the browser test of
# `bisep serve` (skipped without them).
debian_packages=(fluid-soundfont-gm ffmpeg chromium chromium-driver)
missing=()
if command -v dpkg >/dev/null 2>&1; then
  for package in "${debian_packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
fi
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bisep setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || echo "bisep setup: warning: could not install ${missing[*]}; continuing without them" >&2
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "bisep setup: installing Debian packages: ${missing[*]}"
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || echo "bisep setup: warning: could not install ${missing[*]}; continuing without them" >&2
  else
    echo "bisep setup: warning: no rights to install the optional Debian packages ${missing[*]}; run 'sudo apt-get install ${missing[*]}' to add them (continuing without)" >&2
  fi
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "bisep setup: creating the virtual environment $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
# The CPU build of torch first, pinned, so that no dependency pulls a multi-GB CUDA build.
"$venv/bin/python" -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null \
  || "${pip[@]}" "torch==2.13.0"
"${pip[@]}" -e ".[test]"
# tinysoundfont renders SF2 in-process; its pyaudio dependency is only for playback and does not build here.
"$venv/bin/python" -c 'import tinysoundfont' 2>/dev/null || "${pip[@]}" --no-deps "tinysoundfont==0.3.7"
echo "bisep setup: ready ($("$venv/bin/bisep" --version))"
