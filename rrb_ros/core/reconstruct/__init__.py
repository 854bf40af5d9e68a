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

"""Reconstruct: a mesh from one image (Occupancy Network), metric scale from the ground plane."""

from .compact import (
    CompactOccupancyNetwork,
    default_weights_path,
    load_network,
    load_network_and_head,
)
from .mirror import mirror_averaged, MirrorAveraged
from .mise import evaluate_grid, extract_mesh, grid_to_mesh, logit
from .onet import N_PARAMETERS, OccupancyNetwork, OccupancyNetworkBase, preprocess
from .online import ObjectReconstructor, Reconstruction, ReconstructSettings, view_problem
from .refine import CodeRefinement, refine_code, RefineSettings
from .scale import ground_plane_from_height, ground_plane_from_transform, scale_to_ground
from .shapes import canonical_to_object
from .viewpoint import load_viewpoint_head, ViewpointHead

__all__ = [
    'CodeRefinement',
    'CompactOccupancyNetwork',
    'N_PARAMETERS',
    'ObjectReconstructor',
    'OccupancyNetwork',
    'OccupancyNetworkBase',
    'ReconstructSettings',
    'Reconstruction',
    'canonical_to_object',
    'default_weights_path',
    'evaluate_grid',
    'extract_mesh',
    'grid_to_mesh',
    'ground_plane_from_height',
    'ground_plane_from_transform',
    'load_network',
    'load_network_and_head',
    'load_viewpoint_head',
    'logit',
    'mirror_averaged',
    'MirrorAveraged',
    'preprocess',
    'refine_code',
    'RefineSettings',
    'scale_to_ground',
    'view_problem',
    'ViewpointHead',
]
