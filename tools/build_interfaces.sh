#!/usr/bin/env bash
# Builds interfaces/voice_robot_interfaces with colcon against the ROS 2 Jazzy wheels in the venv and
# installs it into the venv itself, so `.venv/bin/python -c "import voice_robot_interfaces.msg"` works
# with no sourcing: the wheels' bootstrap .pth already puts $VIRTUAL_ENV/lib on the library path.
#
# The wheels need three fixes to build messages (see docs/deployment.md):
#  1. extra build-only wheels (requirements/ros-build.txt, installed by tools/setup.sh);
#  2. their exported CMake files name the wheel build host's Python and numpy include dirs: rewrite them;
#  3. AMENT_PREFIX_PATH=$VIRTUAL_ENV and an explicit Python3_EXECUTABLE.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VIRTUAL_ENV:-$root/.venv}
py=$venv/bin/python

py_inc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
np_inc=$("$py" -c 'import numpy; print(numpy.get_include())')

# Fix 2: only files that still carry the wheel host's paths are touched (idempotent).
{ grep -rlE '/opt/python/cp3[0-9]+-cp3[0-9]+' --include='*.cmake' "$venv/share" 2>/dev/null || true; } | while read -r f; do
  sed -i -E \
    -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/(_core|core)/include#${np_inc}#g" \
    -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#${py_inc}#g" "$f"
done

build=$root/build/interfaces
mkdir -p "$build"
cd "$build"
export AMENT_PREFIX_PATH=$venv
export PATH=$venv/bin:$PATH
# The merged install into the venv puts the Python package in site-packages and the typesupport
# libraries in $venv/lib, which the wheels' bootstrap adds to LD_LIBRARY_PATH.
"$venv/bin/colcon" --log-base "$build/log" build \
  --base-paths "$root/interfaces" \
  --build-base "$build/build" \
  --install-base "$venv" --merge-install \
  --cmake-args -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$build/colcon.log" 2>&1 \
  || { tail -n 60 "$build/colcon.log"; echo "interfaces build failed: full log in $build/colcon.log" >&2; exit 1; }
"$py" -c 'import voice_robot_interfaces.msg as m; m.AudioFrame(); m.AddresseeEstimate()' \
  || { echo "voice_robot_interfaces built but does not import from $py" >&2; exit 1; }
echo "voice_robot_interfaces installed into $venv"
