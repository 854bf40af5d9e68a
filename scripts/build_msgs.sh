#!/usr/bin/env bash
# Copyright 2026 rrb_ros contributors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

# Build the message packages in msg_pkgs/ (tf2_msgs, vision_msgs) into a virtualenv that
# holds the ROS 2 Kilted wheels from requirements.txt. No wheel ships these packages, so
# they are generated with rosidl (cmake + gcc) and installed with the venv as prefix:
# libraries into VENV/lib (put on LD_LIBRARY_PATH by the wheels' bootstrapper), Python
# code into VENV's site-packages.
#
# Usage: scripts/build_msgs.sh VENV_DIR
# Idempotent: a package whose message type already imports is skipped. pip does not
# track the installed files: run again after recreating the venv.
set -euo pipefail

die() { echo "build_msgs: error: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: $0 VENV_DIR"
[[ -x "$1/bin/python" ]] || die "'$1' is not a virtualenv (no $1/bin/python)"
VENV=$(cd "$1" && pwd)
PY="$VENV/bin/python"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The ROS wheels' ros_wheels_bootstrapper.pth re-executes Python once with LD_LIBRARY_PATH
# set, unless this marker is already set; an inherited marker would skip that for our venv.
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
export PATH="$VENV/bin:$PATH"

# package name -> Python statement that must work once the package is installed
# (importing the class and loading its C type support).
LOAD='type(M).__import_type_support__()'
declare -A CHECK=(
  [tf2_msgs]="from tf2_msgs.msg import TFMessage as M; $LOAD"
  [vision_msgs]="from vision_msgs.msg import Detection3DArray as M; $LOAD"
)
PACKAGES=(tf2_msgs vision_msgs)

works() { "$PY" -c "${CHECK[$1]}" >/dev/null 2>&1; }

todo=()
for pkg in "${PACKAGES[@]}"; do
  if works "$pkg"; then
    echo "$pkg: already present"
  else
    todo+=("$pkg")
  fi
done
[[ ${#todo[@]} -eq 0 ]] && exit 0

for tool in cmake cc c++; do
  command -v "$tool" >/dev/null || die "'$tool' not found; install cmake and gcc/g++"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rrb_build_msgs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# run_logged LOG CMD...: run quietly; on failure show the end of the log and stop
run_logged() {
  local log=$1; shift
  if ! "$@" >>"$log" 2>&1; then
    echo "build_msgs: command failed: $*" >&2
    echo "---- last lines of $(basename "$log") ----" >&2
    tail -n 40 "$log" >&2
    trap - EXIT
    echo "build_msgs: logs and build files kept in $WORK" >&2
    exit 1
  fi
}

run_logged "$WORK/pip.log" "$PY" -m pip install --disable-pip-version-check \
  -r "$REPO/requirements-build.txt"

for pkg in "${todo[@]}"; do
  src="$REPO/msg_pkgs/$pkg"
  [[ -f "$src/CMakeLists.txt" ]] || die "$src/CMakeLists.txt not found"
  build="$WORK/build_$pkg"
  log="$WORK/$pkg.log"
  start=$SECONDS
  run_logged "$log" cmake -S "$src" -B "$build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_TESTING=OFF \
    -DCMAKE_PREFIX_PATH="$VENV" \
    -DCMAKE_INSTALL_PREFIX="$VENV" \
    -DPython3_EXECUTABLE="$PY"
  run_logged "$log" cmake --build "$build" -j2
  run_logged "$log" cmake --install "$build"
  if ! err=$("$PY" -c "${CHECK[$pkg]}" 2>&1 >/dev/null); then
    echo "$err" | tail -n 5 >&2
    die "$pkg was built and installed into $VENV but does not import"
  fi
  echo "$pkg: built ($((SECONDS - start)) s)"
done
