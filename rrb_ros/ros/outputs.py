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

"""What pose_node publishes for one frame, as messages; shared by the node and `rrb replay`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from geometry_msgs.msg import PoseArray, PoseStamped, TransformStamped
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray, Header, MultiArrayDimension
from visualization_msgs.msg import MarkerArray

from rrb_ros.core.mesh import decimate
from rrb_ros.core.overlay import draw_pose, mask_to_rgb, PALETTE
from rrb_ros.core.pipeline import Frame, FramePipeline, FrameResult
from rrb_ros.ros import convert


@dataclass
class FrameOutputs:
    """The messages of one processed frame (all stamped with the input image's header)."""

    poses: list[PoseStamped]
    """`object_pose`: one per accepted object."""
    pose_array: PoseArray
    """`object_poses`: all accepted objects."""
    fit_iou: Float32MultiArray
    """`fit_iou`: IoU per configured object, NaN when not fitted."""
    transforms: list[TransformStamped]
    """`/tf`: camera optical frame -> <prefix><name> (none when the image has no frame id)."""
    markers: MarkerArray | None
    """`markers`: meshes of accepted objects, DELETE for the others."""
    detections: object | None
    """`detections` (vision_msgs/Detection3DArray) where vision_msgs imports."""
    overlay: Image | None
    """`overlay`: outlines and axes drawn on the image (or on the mask)."""


MARKER_FACES = 10_000
"""Face budget of the mesh markers: a CAD mesh of 300k faces would make every frame's
`markers` 24 MB; 10k faces are 0.7 MB and look the same in RViz."""


class OutputBuilder:
    """Turns FrameResults into messages; meshes become markers once, at construction."""

    def __init__(self, pipeline: FramePipeline, frame_prefix: str = 'rrb/',
                 markers: bool = True, overlay: bool = True, detections: bool = True) -> None:
        """Keep the settings; markers are made when first needed."""
        self.pipeline = pipeline
        self.prefix = frame_prefix
        self.with_overlay = overlay
        self.with_detections = detections and convert.HAVE_VISION_MSGS
        self.with_markers = markers
        self._markers: dict[tuple[str, bool], tuple[object, object]] = {}  # -> (mesh, marker)

    def marker(self, name: str, latched: bool = False):
        """Return the mesh marker of object `name`, made once per mesh (5 ms per 2k faces).

        Each mesh has two: the one `markers` stamps with each frame, and the `latched` one of
        `reconstructions`, stamped zero ("the latest transform") so that a viewer joining later
        draws it.
        """
        i, obj = next((i, o) for i, o in enumerate(self.pipeline.objects) if o.name == name)
        cached = self._markers.get((name, latched))
        if cached is None or cached[0] is not obj.mesh:
            colour = tuple(c / 255.0 for c in PALETTE[i % len(PALETTE)]) + (0.6,)
            cached = (obj.mesh, convert.mesh_marker(decimate(obj.mesh, MARKER_FACES),
                                                    self.prefix + name, None, name, 0, colour))
            self._markers[name, latched] = cached
        return cached[1]

    def reconstructions(self, deleted: Sequence[str] = ()) -> MarkerArray:
        """`reconstructions`: the current meshes of all reconstructed objects (latched topic).

        Objects named in `deleted` (meshes forgotten, to be reconstructed again) get DELETE
        markers.
        """
        return MarkerArray(markers=[
            convert.delete_marker(name, 0, Header(frame_id=self.prefix + name))
            for name in deleted] + [
            self.marker(o.name, latched=True) for o in self.pipeline.objects
            if o.name in self.pipeline.reconstructed and o.mesh is not None])

    def build(self, result: FrameResult, header: Header, frame: Frame) -> FrameOutputs:
        """Build all messages for one frame."""
        by_name = {p.name: p for p in result.poses}
        objects = self.pipeline.objects
        iou = Float32MultiArray(data=[by_name[o.name].iou if o.name in by_name else float('nan')
                                      for o in objects])
        iou.layout.dim = [MultiArrayDimension(
            label='objects: ' + ','.join(o.name for o in objects), size=len(objects),
            stride=len(objects))]
        markers = None
        if self.with_markers and objects:
            items = []
            for obj in objects:
                if obj.name in by_name:
                    m = self.marker(obj.name)
                    m.header.stamp = header.stamp
                    items.append(m)
                else:
                    items.append(convert.delete_marker(obj.name, 0, Header(
                        stamp=header.stamp, frame_id=self.prefix + obj.name)))
            markers = MarkerArray(markers=items)
        detections = None
        if self.with_detections:
            dets = []
            for p in result.poses:
                fitter = self.pipeline.fitter(p.name)
                dets.append(convert.detection3d(p.T_cam_obj, header, p.name, p.iou,
                                                fitter.mesh.extents, fitter.centre, p.name))
            detections = convert.detection3d_array(dets, header)
        overlay = None
        if self.with_overlay:
            img = frame.image.copy() if frame.image is not None else mask_to_rgb(frame.mask)
            for i, obj in enumerate(objects):
                if obj.name in by_name:
                    draw_pose(img, obj.mesh, by_name[obj.name].T_cam_obj, frame.camera,
                              PALETTE[i % len(PALETTE)], obj.name)
            overlay = convert.rgb_to_image(img, header)
        return FrameOutputs(
            poses=[convert.pose_stamped(p.T_cam_obj, header) for p in result.poses],
            pose_array=PoseArray(header=header, poses=[convert.matrix_to_pose(p.T_cam_obj)
                                                       for p in result.poses]),
            fit_iou=iou,
            transforms=[convert.transform_stamped(p.T_cam_obj, header, self.prefix + p.name)
                        for p in result.poses] if header.frame_id else [],
            markers=markers, detections=detections, overlay=overlay)


def frame_from_messages(mask: Image, camera_info, image: Image | None, rectified: bool = False
                        ) -> tuple[Frame, Header, dict[str, str]]:
    """Build a core Frame (and the header outputs copy) from one synchronised message set.

    The header is the image's (acquisition stamp, optical frame), or the mask's without image;
    a leading '/' of its frame id (ROS 1 bags) is dropped, as tf2 does. `rectified`: see
    `convert.camera_info_to_camera`. Raises ValueError naming the input that is unusable.
    The third value holds warnings about input that still makes a frame, {kind: text}.
    """
    source = image.header if image is not None else mask.header
    header = Header(stamp=source.stamp, frame_id=source.frame_id.lstrip('/'))
    notes = {}
    if not header.frame_id:
        notes['no frame_id'] = (f'the {"image" if image is not None else "mask"} has no '
                                'frame_id: poses are published, but no TF')
    elif header.frame_id != source.frame_id:
        notes['frame_id'] = (f"frame_id {source.frame_id!r} starts with '/' (ROS 1?): "
                             f'{header.frame_id!r} is used, as tf2 does')
    try:
        camera = convert.camera_info_to_camera(camera_info, rectified)
    except ValueError as exc:
        raise ValueError(f'camera_info unusable: {exc}') from None
    try:
        labels = convert.image_to_mask(mask)
    except ValueError as exc:
        raise ValueError(f'mask unusable: {exc}') from None
    try:
        rgb = convert.image_to_rgb(image) if image is not None else None
    except ValueError as exc:
        raise ValueError(f'image unusable: {exc}') from None
    return (Frame(convert.stamp_to_ns(header.stamp), header.frame_id, camera, labels, rgb), header,
            notes)
