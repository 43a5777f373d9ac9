"""The JAAD benchmark protocol: will this pedestrian cross, judged 1-2 s before the event?

Kotseruba, Rasouli and Tsotsos, "Benchmark for Evaluating Pedestrian Action Prediction"
(WACV 2021) fixes how JAAD tracks become samples. The facts below come from JAAD's official
interface (``jaad_data.py``: ``generate_data_trajectory_sequence`` with ``seq_type="crossing"``)
and the benchmark code (``action_predict.py``: ``get_data_sequence``; ``train_test.py``):

- The **event** of a behaviour pedestrian is its ``crossing_point`` (crossers and non-crossers
  alike). Where there is none (``-1``) and for ``ped`` bystanders, the track is cut at its
  third-to-last frame, which then plays the event's part.
- A track needs ``obs_length + tte_max`` visible frames up to its event (16 + 60 = 76), else it
  is dropped.
- Windows of ``obs_length`` boxes end ``tte`` boxes before the event, ``tte`` running from
  ``tte_max`` down to ``tte_min`` in steps of ``int((1 - overlap) * obs_length)`` (3 for 0.8):
  TTE 60, 57, ..., 30, i.e. 11 windows per pedestrian. Like the benchmark, the default placement
  (``placement="boxes"``) counts a track's boxes, not its frame numbers: on a track with a frame
  gap a window bridges the gap and TTE is counted in boxes. ``placement="frames"`` places windows
  by frame number instead (a window is always ``obs_length`` consecutive frames, TTE is in frames,
  and a window that would span a frame where the pedestrian is not visible is dropped).
- The label is the track-level ``crossing`` attribute, ``int(crossing > 0)`` as the benchmark
  computes it: ``crossing == -1`` ("irrelevant") counts as not-crossing by default
  (``irrelevant="not-crossing"``); ``irrelevant="exclude"`` leaves those pedestrians out and
  counts them as skipped. ``ped`` bystanders (sample type ``all``) are not-crossing.

Nothing is dropped silently: every pedestrian that yields no window is reported as a :class:`Skip`
with a reason, and ``pedsense.data.intent_dataset.collect_intent_windows`` counts them per
reason for the build summary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from pedsense.errors import ConfigError

TASKS = ("action", "intent")  # is the pedestrian crossing now / will they cross (this protocol)
SAMPLE_TYPES = ("beh", "all")
IRRELEVANT_POLICIES = ("not-crossing", "exclude")
PLACEMENTS = ("boxes", "frames")  # count a track's boxes (the benchmark) or its frame numbers
SPLIT_NAMES = ("train", "val", "test")
OCCLUSION_LEVELS = ("none", "part", "full")
TTE_BIN_EDGES = (30, 40, 50, 60)

# Skip reasons, one per way a pedestrian (or one of its windows) can fail the protocol.
GROUP_TRACK = "group_track"                    # `people` tracks are groups, never samples
NOT_IN_SAMPLE = "bystander_not_in_sample"      # `ped` bystanders under sample type `beh`
NO_ATTRIBUTES = "no_attributes"                # behaviour pedestrian, no attributes file/entry
INVALID_CROSSING = "invalid_crossing"          # `crossing` missing or not one of 1/0/-1
CROSSING_IRRELEVANT = "crossing_irrelevant"    # crossing == -1 under irrelevant="exclude"
EVENT_OUTSIDE_TRACK = "event_outside_track"    # crossing_point not within the track's frames
SHORT_TRACK = "short_track"                    # fewer than obs_length + tte_max frames to event
GAP_IN_WINDOW = "gap_in_window"                # one window lacks a visible box (window-level)
VIDEO_NOT_IN_SPLIT = "video_not_in_split"      # the chosen split does not list the video
SKIP_REASONS = (GROUP_TRACK, NOT_IN_SAMPLE, NO_ATTRIBUTES, INVALID_CROSSING, CROSSING_IRRELEVANT,
                EVENT_OUTSIDE_TRACK, SHORT_TRACK, GAP_IN_WINDOW, VIDEO_NOT_IN_SPLIT)

SKIP_REASON_TEXT = {
    GROUP_TRACK: "`people` group tracks (never samples)",
    NOT_IN_SAMPLE: "`ped` bystanders left out by sample type `beh`",
    NO_ATTRIBUTES: "behaviour pedestrians without an attributes file entry",
    INVALID_CROSSING: "`crossing` attribute missing or not 1/0/-1",
    CROSSING_IRRELEVANT: "`crossing` = -1 (irrelevant), excluded",
    EVENT_OUTSIDE_TRACK: "`crossing_point` not a frame of the track",
    SHORT_TRACK: "track shorter than observation + max TTE before its event",
    GAP_IN_WINDOW: "windows with a frame the pedestrian is not visible in",
    VIDEO_NOT_IN_SPLIT: "pedestrians of videos no split lists",
}


def parse_tte(tte: Any) -> tuple[int, int]:
    """The TTE range ``(min, max)`` in frames from None (the benchmark's 30-60), an int, a pair or
    text such as ``"30 60"``, ``"30,60"`` or ``"30-60"`` (command lines and form fields give text).

    Raises:
        ConfigError: anything else, or ``min > max``, or a negative value.
    """
    if tte is None:
        return (30, 60)
    if isinstance(tte, str):
        parts = [p for p in tte.replace(",", " ").replace("-", " ").strip("()[] ").split() if p]
        try:
            tte = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(f"tte {tte!r} must be MIN MAX frames, e.g. '30 60' (the benchmark).") from None
    if isinstance(tte, (int, float)) and not isinstance(tte, bool):
        tte = [tte, tte]
    values = list(tte) if isinstance(tte, (list, tuple)) else []
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or not all(_is_whole(v) for v in values) or not 0 <= values[0] <= values[1]:
        raise ConfigError(f"tte must be (min, max) frames with 0 <= min <= max, got {tte!r}; "
                          "the benchmark uses (30, 60).")
    return int(values[0]), int(values[1])


def _is_whole(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()


@dataclass(frozen=True)
class IntentOptions:
    """The benchmark protocol's parameters (defaults: exactly the JAAD benchmark's).

    ``tte`` is ``(min, max)`` boxes between a window's last box and the event (any form
    :func:`parse_tte` reads). ``irrelevant`` says what happens to ``crossing == -1`` pedestrians:
    ``not-crossing`` (default, as the benchmark code does) or ``exclude``. ``placement`` counts
    a track's ``boxes`` (default, as the benchmark does) or its ``frames`` (frame-accurate).
    The video split is not part of the protocol: every build takes it as ``split``.
    """

    obs_length: int = 16
    tte: tuple[int, int] = (30, 60)
    overlap: float = 0.8
    sample_type: str = "beh"
    irrelevant: str = "not-crossing"
    placement: str = "boxes"

    def __post_init__(self) -> None:
        object.__setattr__(self, "tte", parse_tte(self.tte))
        _check_options(self)

    @property
    def step(self) -> int:
        """Boxes between consecutive window ends: the benchmark's ``int((1 - overlap) * obs_length)``
        (``obs_length`` when overlap is 0), at least 1."""
        if self.overlap == 0:
            return self.obs_length
        return max(1, int((1.0 - self.overlap) * self.obs_length))

    @property
    def min_track_frames(self) -> int:
        """Boxes a track needs up to and including its event (the benchmark's min_track_size)."""
        return self.obs_length + self.tte[1]

    def ttes(self) -> tuple[int, ...]:
        """Every sampled TTE, largest first: (60, 57, ..., 30) for the defaults."""
        return tuple(range(self.tte[1], self.tte[0] - 1, -self.step))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values for manifests and run configs."""
        values = asdict(self)
        values["tte"] = list(self.tte)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "IntentOptions":
        """Rebuild options from :meth:`as_dict` output or trainer parameters (other keys, and
        None values, are ignored: they take the benchmark's default)."""
        values = dict(values or {})
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if values.get(k) is not None})


def _check_options(options: IntentOptions) -> None:
    if not isinstance(options.obs_length, int) or isinstance(options.obs_length, bool) \
            or options.obs_length < 1:
        raise ConfigError(f"obs_length must be a positive whole number, got {options.obs_length!r}; "
                          "the benchmark uses 16.")
    overlap = options.overlap
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0.0 <= overlap < 1.0:
        raise ConfigError(f"overlap must be in [0, 1), got {overlap!r}; JAAD uses 0.8.")
    for name, value, allowed in (("sample_type", options.sample_type, SAMPLE_TYPES),
                                 ("irrelevant", options.irrelevant, IRRELEVANT_POLICIES),
                                 ("placement", options.placement, PLACEMENTS)):
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.")


@dataclass(frozen=True)
class Window:
    """One benchmark sample: ``obs_length`` consecutive visible boxes of one pedestrian.

    ``frames`` are the boxes' frame indices (consecutive unless the track has a gap and the
    placement is ``boxes``); ``boxes_xyxy`` has one ``(x1, y1, x2, y2)`` per frame, shape
    (obs_length, 4). ``tte`` counts from the window's last box to the event's, in boxes
    (``placement="boxes"``) or frames (``"frames"``): the two agree on a track without gaps.
    ``occlusion`` is the worst level in the window.
    """

    video_id: str
    track_id: str
    frames: tuple[int, ...]
    boxes_xyxy: tuple[tuple[float, float, float, float], ...]
    label: int
    event_frame: int
    event_source: str
    tte: int
    occlusion: str
    occluded_fraction: float
    time_of_day: str
    weather: str
    track_label: str
    behavioural: bool = False  # JAAD annotated the pedestrian's behaviour (``Track.is_behavioural``)

    @property
    def start_frame(self) -> int:
        return self.frames[0]

    @property
    def end_frame(self) -> int:
        return self.frames[-1]

    @property
    def window_id(self) -> str:
        """A name unique within a dataset: ``<video>_<track>_<end frame>``."""
        return f"{self.video_id}_{self.track_id}_{self.end_frame:06d}"

    def as_row(self) -> dict[str, Any]:
        """Flat, DataFrame-ready metadata (no per-frame boxes), including ``tte_bin``."""
        return {"window_id": self.window_id, "video_id": self.video_id, "track_id": self.track_id,
                "track_label": self.track_label, "label": self.label,
                "start_frame": self.start_frame, "end_frame": self.end_frame,
                "event_frame": self.event_frame, "event_source": self.event_source,
                "tte": self.tte, "tte_bin": tte_bin(self.tte), "occlusion": self.occlusion,
                "occluded_fraction": round(self.occluded_fraction, 4),
                "time_of_day": self.time_of_day, "weather": self.weather}


@dataclass(frozen=True)
class Skip:
    """A pedestrian (or, for ``gap_in_window``, one window) left out, and why."""

    video_id: str
    track_id: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class TrackEvent:
    """The frame a pedestrian's windows count back from, and where it came from."""

    frame: int
    source: str  # "crossing_point" or "track_end" (third-to-last visible frame)


def tte_bin(tte: int, edges: Sequence[int] = TTE_BIN_EDGES) -> str:
    """Name the TTE bin of ``tte``: "30-39", "40-49", "50-60" for the default edges."""
    if tte < edges[0]:
        return f"<{edges[0]}"
    if tte > edges[-1]:
        return f">{edges[-1]}"
    for low, high in zip(edges[:-2], edges[1:-1]):
        if low <= tte < high:
            return f"{low}-{high - 1}"
    return f"{edges[-2]}-{edges[-1]}"


# ---------------------------------------------------------------------------------------------
# One video


def visible_frames(track) -> list[int]:
    """Sorted frame indices where the track has a visible (not ``outside``) box."""
    return sorted(box.frame for box in track.boxes if not getattr(box, "outside", False))


def track_event(track, placement: str = "boxes") -> TrackEvent | str:
    """The event of one pedestrian track, or a skip reason when it has none.

    ``crossing_point`` when the attributes give one (>= 0); otherwise the third-to-last visible
    frame, as JAAD's interface cuts the track (``boxes[:-2]``). Under ``placement="boxes"`` the
    crossing point must be one of the track's frames (the benchmark looks its box up by frame);
    under ``"frames"`` it only has to lie within the track's span.
    """
    frames = visible_frames(track)
    crossing_point = _crossing_point(track) if track.is_behavioural else None
    if crossing_point is not None and crossing_point >= 0:
        inside = crossing_point in frames if placement == "boxes" else \
            bool(frames) and frames[0] <= crossing_point <= frames[-1]
        return TrackEvent(crossing_point, "crossing_point") if inside else EVENT_OUTSIDE_TRACK
    if len(frames) < 3:
        return SHORT_TRACK
    return TrackEvent(frames[-3], "track_end")


def track_label(track, options: IntentOptions) -> int | str:
    """The window label of one track (1 crossing, 0 not), or a skip reason."""
    if track.label == "people":
        return GROUP_TRACK
    if not track.is_behavioural:
        return 0 if options.sample_type == "all" else NOT_IN_SAMPLE
    if not track.attributes:
        return NO_ATTRIBUTES
    crossing = _crossing(track)
    if crossing not in (-1, 0, 1):
        return INVALID_CROSSING
    if crossing == -1:
        return 0 if options.irrelevant == "not-crossing" else CROSSING_IRRELEVANT
    return crossing


def intent_windows(annotation, options: IntentOptions | None = None
                   ) -> tuple[list[Window], list[Skip]]:
    """Cut every pedestrian of one video into benchmark windows.

    Args:
        annotation: a ``pedsense.data.annotation.VideoAnnotation``.
        options: the protocol (default: the JAAD benchmark's).

    Returns:
        ``(windows, skips)``: windows in track order, then by end frame; one skip per pedestrian
        that yields nothing, plus one per window dropped for a visibility gap.
    """
    options = options or IntentOptions()
    windows: list[Window] = []
    skips: list[Skip] = []
    for track in annotation.tracks:
        track_windows, track_skips = _track_windows(annotation, track, options)
        windows.extend(track_windows)
        skips.extend(track_skips)
    return windows, skips


def _track_windows(annotation, track, options: IntentOptions) -> tuple[list[Window], list[Skip]]:
    video_id, track_id = annotation.video_id, track.track_id
    label = track_label(track, options)
    if isinstance(label, str):
        return [], [Skip(video_id, track_id, label, _skip_detail(track, label))]
    event = track_event(track, options.placement)
    if isinstance(event, str):
        return [], [Skip(video_id, track_id, event, _skip_detail(track, event))]
    boxes = sorted((box for box in track.boxes if not getattr(box, "outside", False)),
                   key=lambda box: box.frame)
    # The boxes up to and including the event's: the benchmark's min_track_size counts them.
    upto = [box for box in boxes if box.frame <= event.frame]
    if len(upto) < options.min_track_frames:
        detail = (f"{len(upto)} visible boxes up to event frame {event.frame}; "
                  f"needs {options.min_track_frames}")
        return [], [Skip(video_id, track_id, SHORT_TRACK, detail)]
    if options.placement == "boxes":
        return _windows_by_box(annotation, track, upto, label, event, options), []
    return _windows_by_frame(annotation, track, boxes, label, event, options)


def _windows_by_box(annotation, track, upto: list, label: int, event: TrackEvent,
                    options: IntentOptions) -> list[Window]:
    """The benchmark's arithmetic: the window ending ``tte`` boxes before the event's box."""
    windows = []
    for tte in options.ttes():  # largest TTE first: ascending end
        end = len(upto) - 1 - tte
        window = upto[end - options.obs_length + 1:end + 1]
        windows.append(_make_window(annotation, track, window, label, event, tte))
    return windows


def _windows_by_frame(annotation, track, boxes: list, label: int, event: TrackEvent,
                      options: IntentOptions) -> tuple[list[Window], list[Skip]]:
    """Frame-accurate windows: ``obs_length`` consecutive frames ending ``tte`` frames before the
    event; a window over a frame without a visible box is dropped (and reported)."""
    by_frame = {box.frame: box for box in boxes}
    windows, skips = [], []
    for tte in options.ttes():
        end = event.frame - tte
        window_frames = range(end - options.obs_length + 1, end + 1)
        missing = [f for f in window_frames if f not in by_frame]
        if missing:
            skips.append(Skip(annotation.video_id, track.track_id, GAP_IN_WINDOW,
                              f"window ending at frame {end} lacks frames {missing[:5]}"))
            continue
        windows.append(_make_window(annotation, track, [by_frame[f] for f in window_frames],
                                    label, event, tte))
    return windows, skips


def _make_window(annotation, track, boxes: list, label: int, event: TrackEvent, tte: int) -> Window:
    levels = [_occlusion_level(box) for box in boxes]
    worst = max(levels)
    return Window(
        video_id=annotation.video_id, track_id=track.track_id,
        frames=tuple(box.frame for box in boxes),
        boxes_xyxy=tuple(tuple(float(v) for v in box.xyxy) for box in boxes),
        label=int(label), event_frame=event.frame, event_source=event.source, tte=tte,
        occlusion=OCCLUSION_LEVELS[worst],
        occluded_fraction=sum(1 for level in levels if level > 0) / len(levels),
        time_of_day=str(getattr(annotation, "time_of_day", "") or "unknown"),
        weather=str(getattr(annotation, "weather", "") or "unknown"),
        track_label=track.label, behavioural=bool(track.is_behavioural))


def _occlusion_level(box) -> int:
    """0 none, 1 part, 2 full, from the ``occlusion`` attribute (else the CVAT ``occluded`` flag)."""
    value = getattr(box, "occlusion", None)
    if isinstance(value, str) and value in OCCLUSION_LEVELS:
        return OCCLUSION_LEVELS.index(value)
    if isinstance(value, int) and 0 <= value <= 2:
        return value
    return 1 if getattr(box, "occluded", False) else 0


def _crossing(track) -> int | None:
    value = getattr(track, "crossing", None)
    if value is None:
        value = track.attributes.get("crossing")
    return _as_int(value)


def _crossing_point(track) -> int | None:
    value = getattr(track, "crossing_point", None)
    if value is None:
        value = track.attributes.get("crossing_point")
    return _as_int(value)


def _as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _skip_detail(track, reason: str) -> str:
    if reason == EVENT_OUTSIDE_TRACK:
        frames = visible_frames(track)
        span = f"{frames[0]}-{frames[-1]}" if frames else "no visible frames"
        return f"crossing_point {_crossing_point(track)} is not a visible frame of the track ({span})"
    if reason == INVALID_CROSSING:
        return f"crossing = {track.attributes.get('crossing')!r}"
    if reason == SHORT_TRACK:
        return f"{len(visible_frames(track))} visible frames"
    return ""
