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

"""pose_node parameters as plain data: names, defaults, descriptions, and the pipeline they make.

The node declares exactly these ROS parameters; `rrb replay` reads the same names from the
node's parameter YAML, so a bag replayed offline is processed with the node's settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .fit import FitSettings
from .mesh import load_mesh
from .pipeline import FramePipeline, ObjectSpec, PipelineSettings
from .reconstruct.online import ObjectReconstructor, ReconstructSettings
from .reconstruct.scale import ground_plane_from_height

# name: (default, description); 'objects.names' is a string array without a default value
PARAMETERS: dict[str, tuple[Any, str]] = {
    'objects.names': ([], 'Object names; per name N set objects.N.label (mask value) and '
                      'objects.N.mesh (mesh file, metres; empty: reconstruct it)'),
    'object_frame_prefix': ('rrb/', 'TF child frame of object N is <prefix>N'),
    'sync_tolerance': (0.0, 'Largest stamp difference (s) between image, mask and camera_info '
                       'of one frame; 0 = identical stamps'),
    'use_image': (True, 'Subscribe to the camera image (for the overlay, and to reconstruct '
                  'objects without a mesh)'),
    'latch_camera_info': (True, 'Reuse the latest camera_info when none carries the frame stamp'),
    'rectified': (False, "The image and mask are rectified (image_rect beside the driver's "
                  'distorted camera_info): intrinsics from camera_info P, its distortion '
                  'ignored; false: from K, and the distortion must be zero'),
    'reliability': ('best_effort', 'QoS reliability of the input subscriptions: best_effort '
                    '(sensor data) or reliable'),
    'queue_size': (10, 'Messages kept per input stream while waiting for their partners'),
    'device': ('cpu', 'Torch device for fitting: cpu, cuda, cuda:N'),
    'resolution': (FitSettings.resolution, 'Working resolution of the fitting crop (pixels)'),
    'coarse_iterations': (FitSettings.coarse_iterations, 'Most Adam steps, coarse stage'),
    'fine_iterations': (FitSettings.fine_iterations, 'Most Levenberg-Marquardt steps, fine '
                        'stage'),
    'max_faces': (FitSettings.max_faces, 'Face budget of each mesh for fitting'),
    'min_iou': (PipelineSettings.min_iou, 'Fits with a lower silhouette IoU publish no pose and '
                're-initialise tracking'),
    'track_margin': (PipelineSettings.track_margin, 'Hysteresis: an object tracked from the '
                     'previous frame keeps its track down to min_iou - track_margin; 0 = off'),
    'min_mask_pixels': (PipelineSettings.min_mask_pixels, 'Fewer mask pixels: object not '
                        'visible'),
    'publish_overlay': (True, 'Publish the overlay image with fitted outlines and axes'),
    'publish_markers': (True, 'Publish the fitted meshes as a MarkerArray'),
    'warn_period': (5.0, 'Seconds between repeated warnings of the same kind'),
    'camera_height': (0.0, 'Height (m) of the camera optical centre above the floor, for the '
                      'metric scale of reconstructed objects; 0 = unknown'),
    'camera_pitch': (0.0, 'Tilt (rad) of the optical axis below the horizon, no roll; used '
                     'with camera_height'),
    'base_frame': ('', 'TF frame whose z = 0 plane is the floor (+z up); when set, the ground '
                   'plane comes from TF (base_frame -> image frame) instead of camera_height'),
    'reconstruction.network': ('', 'Occupancy network checkpoint for objects without a mesh '
                               '(compact or ONet img2mesh layout); empty = the shipped one'),
    'reconstruction.cache_dir': ('', 'Folder of reconstructed meshes (<name>.obj), reused '
                                 'after a restart; empty = $ROS_HOME/rrb_ros/reconstructions'),
    'reconstruction.min_pixels': (ReconstructSettings.min_pixels, 'A view is good for '
                                  'reconstruction with at least this many mask pixels'),
    'reconstruction.min_iou': (ReconstructSettings.min_iou, 'A reconstruction fitting its own '
                               'view with this silhouette IoU is kept at once'),
    'reconstruction.attempts': (ReconstructSettings.attempts, 'Good views tried before the '
                                'best reconstruction below min_iou is kept'),
    'reconstruction.fallback_iou': (ReconstructSettings.fallback_iou, 'Least IoU of that best '
                                    'reconstruction; below, the attempts go on'),
    'reconstruction.max_faces': (ReconstructSettings.max_faces, 'Face budget of reconstructed '
                                 'meshes'),
    'reconstruction.mirror_average': (
        ReconstructSettings.mirror_average, 'Also reconstruct from the image turned left to '
        'right and average the two shapes (about +0.02 IoU on held-out chairs, twice the '
        "decoder's time); networks trained by rrb only, ONet's own weights are used alone"),
    'reconstruction.viewpoint_flip_mass': (
        ReconstructSettings.viewpoint_flip_mass, 'When the viewpoint head gives the fitted yaw '
        'less than this probability, the 180-degree turned pose is fitted too and kept if it '
        'fits nearly as well; 0 = off'),
    'reconstruction.refine_iterations': (
        ReconstructSettings.refine_iterations, 'Gradient steps refining the reconstructed '
        "shape's code and pose until its silhouette matches the mask (about 0.5 s each on a "
        '2-core CPU; 30 is the benchmarked setting, see the README); 0 = off'),
    'reconstruction.views': (
        ReconstructSettings.views, "Most views whose shape codes are averaged into a "
        "reconstructed object's shape: after the first, good views of the tracked object from "
        'other directions join, each costing about one reconstruction; 1 = the first view only'),
    'reconstruction.view_min_angle': (
        ReconstructSettings.view_min_angle, 'Least angle (rad) between the directions, in the '
        'object frame, from which two views of one shape see the object'),
    'reconstruction.view_weight_power': (
        ReconstructSettings.view_weight_power, "The views' codes are averaged with weights "
        "u^-power, u the uncertain share of each view's occupancy field, so a view that shows "
        'little of the object (a chair from behind) counts less; 0 = plain mean (4 is the '
        'measured setting, see the README)'),
}


def object_parameters(names: list[str]) -> dict[str, tuple[Any, str]]:
    """Per-object parameters (defaults and descriptions) for the given object names."""
    out = {}
    for i, name in enumerate(names):
        out[f'objects.{name}.label'] = (i + 1, f'Mask value of object {name}')
        out[f'objects.{name}.mesh'] = ('', f'Mesh file of object {name} (metres)')
    return out


def flatten(tree: dict, prefix: str = '') -> dict[str, Any]:
    """Nested YAML parameters {'a': {'b': 1}} as flat ROS names {'a.b': 1}."""
    out = {}
    for key, value in tree.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            out.update(flatten(value, name + '.'))
        else:
            out[name] = value
    return out


def read_params_file(path: str | Path, node_name: str = 'pose_node') -> dict[str, Any]:
    """Flat parameters of `node_name` from a ROS parameter YAML (`/**` or the node's key)."""
    import yaml
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ValueError(f'cannot read parameter file {path}: {exc.strerror}') from None
    except yaml.YAMLError as exc:
        raise ValueError(f'parameter file {path} is not valid YAML: {exc}') from None
    params: dict[str, Any] = {}
    for key, section in data.items() if isinstance(data, dict) else ():
        if key in ('/**', node_name, '/' + node_name) or key.endswith('/' + node_name):
            params.update(flatten((section or {}).get('ros__parameters', {}) or {}))
    if not params:
        raise ValueError(f'{path} has no ros__parameters for /** or {node_name}')
    return params


def unknown_parameters(params: dict[str, Any]) -> list[str]:
    """Names in `params` that pose_node does not declare."""
    known = set(PARAMETERS) | set(object_parameters(list(params.get('objects.names') or [])))
    return sorted(n for n in params if n not in known and n != 'use_sim_time')


def with_defaults(params: dict[str, Any]) -> dict[str, Any]:
    """`params` completed with every default (object parameters included)."""
    out = {name: default for name, (default, _) in PARAMETERS.items()}
    out.update(params)
    names = list(out['objects.names'] or [])
    for name, (default, _) in object_parameters(names).items():
        out.setdefault(name, default)
    return out


def build_pipeline(params: dict[str, Any], base_dir: str | Path | None = None,
                   default_cache: bool = True) -> FramePipeline:
    """Build the FramePipeline that pose_node makes from these (flat) parameters.

    Relative mesh paths are resolved against `base_dir` (default: the working directory).
    Without `reconstruction.cache_dir`, reconstructions are cached in `default_cache_dir()`
    when `default_cache` is true, and not at all otherwise.
    Raises MeshError for a mesh that cannot be read and ValueError for bad settings.
    """
    p = with_defaults(params)
    objects = []
    for name in list(p['objects.names'] or []):
        mesh_path = str(p[f'objects.{name}.mesh'] or '')
        mesh = load_mesh(_resolve(mesh_path, base_dir)) if mesh_path else None
        objects.append(ObjectSpec(name, int(p[f'objects.{name}.label']), mesh))
    fit = FitSettings(resolution=int(p['resolution']), device=str(p['device']),
                      coarse_iterations=int(p['coarse_iterations']),
                      fine_iterations=int(p['fine_iterations']),
                      max_faces=int(p['max_faces']))
    reconstructor = None
    if any(o.mesh is None for o in objects):
        network = str(p['reconstruction.network'] or '')
        reconstructor = ObjectReconstructor(ReconstructSettings(
            network=str(_resolve(network, base_dir)) if network else '',
            cache_dir=(str(_resolve(str(p['reconstruction.cache_dir']), base_dir))
                       if p['reconstruction.cache_dir'] else
                       default_cache_dir() if default_cache else ''),
            min_pixels=int(p['reconstruction.min_pixels']),
            min_iou=float(p['reconstruction.min_iou']),
            attempts=int(p['reconstruction.attempts']),
            fallback_iou=float(p['reconstruction.fallback_iou']),
            max_faces=int(p['reconstruction.max_faces']),
            mirror_average=bool(p['reconstruction.mirror_average']),
            viewpoint_flip_mass=float(p['reconstruction.viewpoint_flip_mass']),
            refine_iterations=int(p['reconstruction.refine_iterations']),
            views=int(p['reconstruction.views']),
            view_min_angle=float(p['reconstruction.view_min_angle']),
            view_weight_power=float(p['reconstruction.view_weight_power']),
            device=str(p['device'])), fit)
        reconstructor.load_network()  # a bad checkpoint fails at start-up, not mid-run
    return FramePipeline(objects, PipelineSettings(
        fit=fit, min_iou=float(p['min_iou']), track_margin=float(p['track_margin']),
        min_mask_pixels=int(p['min_mask_pixels'])),
        reconstructor)


def _resolve(path: str, base_dir: str | Path | None) -> Path:
    out = Path(path).expanduser()
    if base_dir is not None and not out.is_absolute():
        out = Path(base_dir) / out
    return out


def default_cache_dir() -> str:
    """$ROS_HOME/rrb_ros/reconstructions (ROS_HOME defaults to ~/.ros)."""
    home = os.environ.get('ROS_HOME') or os.path.join(os.path.expanduser('~'), '.ros')
    return os.path.join(home, 'rrb_ros', 'reconstructions')


def ground_from_params(params: dict[str, Any]) -> tuple[np.ndarray, float] | None:
    """Return the ground plane from camera_height / camera_pitch; None when the height is 0."""
    p = with_defaults(params)
    if float(p['camera_height']) == 0.0:
        return None
    return ground_plane_from_height(float(p['camera_height']), float(p['camera_pitch']))
