#!/usr/bin/env bash
# One-shot, idempotent set-up of a fresh Debian 12 machine for voice_robot:
# Debian packages, a .venv with pinned Python deps and ROS 2 Jazzy wheels, the interfaces build,
# and the project itself (editable). Each step is skipped when its inputs have not changed, so a
# second run takes about a second.
#   tools/setup.sh          runtime + test dependencies
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv=$root/.venv
stamps=$venv/.voice_robot_stamps
say() { printf '[setup] %s\n' "$*"; }

# --- Debian packages --------------------------------------------------------------------------
debs=(python3-venv python3-dev g++ cmake git espeak-ng flite portaudio19-dev libsndfile1 libgl1 libglib2.0-0
      asterisk-core-sounds-en-wav pocketsphinx-testdata)
missing=()
for d in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$d" 2>/dev/null | grep -q "install ok installed" || missing+=("$d")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- venv -------------------------------------------------------------------------------------
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  python3 -m venv "$venv"
fi
mkdir -p "$stamps"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)

stamp_ok() {  # stamp_ok NAME FILES... : true when FILES hash to what NAME recorded
  local name=$1; shift
  local h; h=$(cat "$@" | sha256sum | cut -d' ' -f1)
  [ -f "$stamps/$name" ] && [ "$(cat "$stamps/$name")" = "$h" ] && return 0
  echo "$h" > "$stamps/$name.want"; return 1
}
stamp_done() { mv "$stamps/$1.want" "$stamps/$1"; }

req=(requirements/constraints.txt requirements/ros.txt requirements/ros-build.txt requirements/base.txt
     requirements/nodeps.txt requirements/test.txt requirements/test-nodeps.txt)
if ! stamp_ok python-deps "${req[@]}"; then
  say "installing pinned Python dependencies (first time: a few minutes)"
  "${pip[@]}" install "pip==24.3.1" "setuptools==79.0.1" wheel 2>&1 | grep -v "is ignored" || true
  "${pip[@]}" install -c requirements/constraints.txt -r requirements/ros.txt -r requirements/ros-build.txt \
      -r requirements/base.txt -r requirements/test.txt 2>&1 | grep -v "is ignored" || true
  "${pip[@]}" install --no-deps -c requirements/constraints.txt -r requirements/nodeps.txt \
      -r requirements/test-nodeps.txt 2>&1 | grep -v "is ignored" || true
  "$venv/bin/python" -c "import rclpy, torch, pyroomacoustics, faster_whisper, mediapipe, openai" \
    || { say "Python dependencies did not install (see the pip output above)"; exit 1; }
  stamp_done python-deps
fi

if ! stamp_ok interfaces interfaces/voice_robot_interfaces/CMakeLists.txt interfaces/voice_robot_interfaces/package.xml \
     interfaces/voice_robot_interfaces/msg/*.msg requirements/ros-build.txt \
   || ! "$venv/bin/python" -c "import voice_robot_interfaces.msg" 2>/dev/null; then
  say "building voice_robot_interfaces (colcon, about 20 s)"
  VIRTUAL_ENV=$venv tools/build_interfaces.sh
  [ -f "$stamps/interfaces.want" ] && stamp_done interfaces
fi

if ! stamp_ok project setup.py setup.cfg package.xml || [ ! -x "$venv/bin/voice-robot" ]; then
  say "installing voice_robot (editable)"
  "${pip[@]}" install --no-deps --no-build-isolation --use-pep517 -e . 2>&1 | grep -v "is ignored" || true
  [ -x "$venv/bin/voice-robot" ] || { say "voice-robot entry point missing after install"; exit 1; }
  [ -f "$stamps/project.want" ] && stamp_done project
fi
say "ready: $venv"
