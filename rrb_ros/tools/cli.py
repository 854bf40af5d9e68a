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

"""`rrb`: command-line entry point with one subcommand per tool."""

from __future__ import annotations

import argparse
import sys

from . import (
    calibrate_recon_cmd,
    demo_cmd,
    eval_cmd,
    evaltraj_cmd,
    fit_cmd,
    orbslam_cmd,
    reconstruct_cmd,
    replay_cmd,
    synth_cmd,
    train_recon_cmd,
    train_viewpoint_cmd,
)

SUBCOMMANDS = {
    'fit': fit_cmd,
    'demo': demo_cmd,
    'synth': synth_cmd,
    'replay': replay_cmd,
    'eval': eval_cmd,
    'eval-traj': evaltraj_cmd,
    'reconstruct': reconstruct_cmd,
    'orbslam': orbslam_cmd,
    'train-recon': train_recon_cmd,
    'train-viewpoint': train_viewpoint_cmd,
    'calibrate-recon': calibrate_recon_cmd,
}


def main(argv: list[str] | None = None) -> int:
    """Run `rrb <subcommand> ...`; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog='rrb', description='Reconstruct, Rasterize and Backprop: object pose tools.')
    sub = parser.add_subparsers(dest='command', metavar='SUBCOMMAND')
    sub.required = True
    for name, module in SUBCOMMANDS.items():
        module.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, OSError) as exc:  # bad input: one line, no traceback
        print(f'rrb {args.command}: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
