"""The synthetic demo set: JAAD-format clips and annotations of stick figures on a drawn street.

``make_demo_dataset()`` writes, under ``<home>/data/raw/``, everything JAAD's official python
interface (``jaad_data.py``) reads, in JAAD's own formats:

- ``clips/video_XXXX.mp4`` (OpenCV ``mp4v``; its frame count equals the XML's ``size``),
- ``annotations/video_XXXX.xml`` (CVAT XML: ``pedestrian`` tracks with every behaviour attribute,
  ``ped`` bystander tracks, occlusion, ``outside="1"`` boxes where a bystander leaves the frame),
- ``annotations_attributes/``, ``annotations_appearance/``, ``annotations_traffic/``,
  ``annotations_vehicle/`` (one file per video) and ``split_ids/{default,high_visibility,all_videos}/``,
- ``SYNTHETIC_DEMO.json``: the marker that labels the set as synthetic (``is_synthetic()``).

Each video is planned in metres (``simulation``; ``drawing`` draws it): *crossers* walk
along a sidewalk, may wait at the curb, then cross the road; *waiters* walk to the curb and stay
or turn away; *walkers* and ``ped`` *bystanders* keep to the sidewalks. ``cross="crossing"``
holds exactly while a person's feet are on the asphalt. Every crosser is in view for at least
``MIN_PRE_EVENT_FRAMES`` frames before its ``crossing_point`` (the frame it steps onto the road),
and every non-crosser has a reference ``crossing_point`` as deep into its track, so the JAAD
intent protocol (16 observed frames ending 30-60 frames before the event) has windows of both
classes. Everything is drawn from ``numpy`` generators seeded by ``(seed, video)``: the same
seed gives byte-identical XML and identical frames.

The package, one module per job: ``street`` (the street and camera, in metres), ``simulation``
(who walks where), ``drawing`` (pixels: street, occluders, stick figures, weather), ``render``
(one video: plan, frames, what an annotator sees), ``jaad_xml`` (JAAD's files), ``marker``
(``SYNTHETIC_DEMO.json``, ``is_synthetic``) and ``dataset`` (``make_demo_dataset``). The marker
functions import no OpenCV or numpy, so ``from pedsense.data.synthetic import is_synthetic`` is
cheap; the other names below load their module (and OpenCV) on first use.
"""

from __future__ import annotations

import importlib

from pedsense.data.synthetic.marker import (MARKER_NAME, SYNTHETIC_NOTE, is_synthetic, marker_path,
                                            read_marker, synthetic_video_ids)

# Public names of the heavier modules, loaded on first use (PEP 562).
_LAZY = {
    **dict.fromkeys(("make_demo_dataset", "assign_splits", "write_splits", "write_video_annotations",
                     "DEFAULT_NUM_FRAMES", "DEFAULT_WIDTH", "DEFAULT_HEIGHT", "FORMAT_VERSION",
                     "SPLIT_SETS"), "dataset"),
    **dict.fromkeys(("VideoPlan", "Observation", "plan_video", "render_frame", "write_clip"), "render"),
    **dict.fromkeys(("TrackRecord", "build_tracks", "annotation_xml", "attributes_xml", "appearance_xml",
                     "traffic_xml", "vehicle_xml", "TIMESTAMP"), "jaad_xml"),
    **dict.fromkeys(("Leg", "Route", "Person", "simulate", "plan_person", "plan_crosser", "plan_waiter",
                     "plan_walker", "MIN_PRE_EVENT_FRAMES"), "simulation"),
}

__all__ = ["MARKER_NAME", "SYNTHETIC_NOTE", "is_synthetic", "marker_path", "read_marker",
           "synthetic_video_ids", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
