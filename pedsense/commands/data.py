"""`pedsense` subcommands for data: setup, demo-data, preprocess, info."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

from pedsense.config import CROP_SIZE, SEQUENCE_LENGTH, SEQUENCE_STRIDE, paths
# Light modules only at the top (no OpenCV, no torch): `setup` and `info` stay cheap. The builds
# are imported by the steps that run them.
from pedsense.catalogue import PROCESSED, family_readiness, next_step
from pedsense.data.intent import IRRELEVANT_POLICIES, PLACEMENTS, SAMPLE_TYPES, TASKS, IntentOptions
from pedsense.data.manifest import annotated_video_ids, frames_meta, list_videos, missing_clips
from pedsense.data.splits import SPLITS
from pedsense.data.stats import dataset_stats, format_stats
from pedsense.errors import ConfigError

PREPROCESS_STEPS = ("frames", "yolo", "detector", "resnet", "crops", "context", "all")


class TerminalProgress:
    """A ``progress(done, total, message)`` callback drawing a ``\\r`` bar on stderr.

    On a terminal the bar redraws in place; elsewhere (logs, CI) it prints one line per step.
    """

    def __init__(self, label: str, stream=None, width: int = 28):
        self.label, self.width = label, width
        self.stream = stream or sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = ""
        self._filled = -1

    def __call__(self, done: int, total: int, message: str = "") -> None:
        fraction = min(1.0, done / total) if total else 1.0
        filled = int(round(fraction * self.width))
        line = (f"{self.label:<10} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{done}/{total} {message}")[:120]
        finished = not total or done >= total
        if self.interactive:
            self.stream.write("\r" + line.ljust(len(self._last)) + ("\n" if finished else ""))
        elif filled != self._filled or finished:
            # not a terminal: one line each time the bar grows, so logs stay short
            self.stream.write(line + "\n")
        self.stream.flush()
        self._last, self._filled = line, filled


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``setup``, ``demo-data``, ``preprocess`` and ``info`` to the `pedsense` parser."""
    setup = subparsers.add_parser("setup", help="create the data folders and show what is present")
    setup.set_defaults(func=cmd_setup)

    demo = subparsers.add_parser("demo-data", help="write the synthetic JAAD-format demo set")
    demo.add_argument("--videos", type=int, default=8, help="number of clips (default 8)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--overwrite", action="store_true", help="replace existing demo files")
    demo.add_argument("--if-missing", action="store_true",
                      help="do nothing when data/raw/annotations already holds XML (used by `make run`)")
    demo.set_defaults(func=cmd_demo_data)

    get = subparsers.add_parser(
        "get-annotations", help="download JAAD's annotations (346 XML, a few MB; no clips) into data/raw")
    get.add_argument("--url", default=None, help="the archive to fetch (default: JAAD's repository at "
                     "the pinned commit; file:///path/to/archive.tar.gz works offline)")
    get.set_defaults(func=cmd_get_annotations)

    pre = subparsers.add_parser("preprocess", help="extract frames and build the training datasets "
                                "('context': from the annotations alone, no clips)")
    pre.add_argument("step", choices=PREPROCESS_STEPS, help="what to build ('all': every step in order)")
    pre.add_argument("--video", help="frames: only this video id")
    pre.add_argument("--fps", type=float, help="frames: keep about this many frames per second")
    pre.add_argument("--annotated-only", action="store_true", help="frames: only frames with a box")
    pre.add_argument("--split", default="default", choices=SPLITS,
                     help="video split: JAAD's split files (default, high_visibility, all_videos) or "
                          "a seeded random one (random)")
    pre.add_argument("--task", default="action", choices=TASKS,
                     help="action: is the pedestrian crossing now (per-frame `cross`, default); "
                          "intent: will they cross (JAAD benchmark windows, track-level `crossing`)")
    pre.add_argument("--sample-type", default="beh", choices=SAMPLE_TYPES,
                     help="intent: beh = behaviour pedestrians; all = also `ped` bystanders (not-crossing)")
    pre.add_argument("--tte", type=int, nargs="+", default=[30, 60], metavar="FRAMES",
                     help="intent: frames from a window's end to the event, MIN MAX (default 30 60) or one value")
    pre.add_argument("--overlap", type=float, default=0.8, help="intent: window overlap (default 0.8)")
    pre.add_argument("--irrelevant", default="not-crossing", choices=IRRELEVANT_POLICIES,
                     help="intent: pedestrians with crossing=-1: not-crossing (default, as the benchmark "
                          "code does) or exclude")
    pre.add_argument("--placement", default="boxes", choices=PLACEMENTS,
                     help="intent: count a track's boxes as the benchmark does (default: a window bridges "
                          "a frame gap, TTE in boxes) or its frames (frame-accurate; gap windows dropped)")
    pre.add_argument("--frame-step", type=int, default=1, help="yolo/detector/crops: every n-th frame")
    pre.add_argument("--sequence-length", type=int, default=SEQUENCE_LENGTH,
                     help="resnet: frames per sequence; intent: the observation length of every build")
    pre.add_argument("--stride", type=int, default=SEQUENCE_STRIDE,
                     help="resnet (action): frames between sequence starts")
    pre.add_argument("--crop-size", default=f"{CROP_SIZE[0]}",
                     help="resnet/crops: crop size, N or WxH (default 224)")
    pre.set_defaults(func=cmd_preprocess)

    info = subparsers.add_parser("info", help="print dataset statistics")
    info.set_defaults(func=cmd_info)

    windows = subparsers.add_parser(
        "windows", help="count the intent benchmark's tracks and windows per split (no frames needed)")
    windows.add_argument("--split", default="default", choices=SPLITS, help="video split (default: default)")
    windows.add_argument("--irrelevant", default="not-crossing", choices=IRRELEVANT_POLICIES,
                         help="pedestrians with crossing=-1 (default: not-crossing, as the benchmark)")
    windows.add_argument("--placement", default="boxes", choices=PLACEMENTS,
                         help="count boxes (default, as the benchmark) or frames")
    windows.set_defaults(func=cmd_windows)


def parse_crop_size(text: str) -> tuple[int, int]:
    """``"224"`` → (224, 224); ``"128x96"`` → (128, 96)."""
    try:
        parts = [int(v) for v in str(text).lower().replace(",", "x").split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 8:
        raise ConfigError(f"--crop-size {text!r} must be N or WxH with sides of at least 8, e.g. 224 or 224x224.")
    return parts[0], parts[1]


# -- setup ----------------------------------------------------------------------------------
def cmd_setup(args) -> int:
    p = paths()
    for folder in (p.clips, p.annotations, p.attributes, p.split_ids, p.frames, p.processed, p.base_models):
        folder.mkdir(parents=True, exist_ok=True)
    print(f"data home: {p.home}")
    for line in describe_data(p):
        print("  " + line)
    print(f"next: {next_step(p.home)}")
    return 0


def describe_data(p) -> list[str]:
    """One line per thing in the data layout: what is there (and, for clips, what is missing)."""
    videos = annotated_video_ids(p.home)
    extracted = [v for v in videos if frames_meta(v, p.home)]
    lines = [f"annotations: {len(videos)} XML in {p.annotations}", _clips_line(p, videos),
             f"frames:      {len(extracted)}/{len(videos)} videos extracted in {p.frames}"]
    for dataset in PROCESSED:
        built = "built" if dataset.built(p.home) else "not built"
        lines.append(f"{dataset.kind + ':':<12} {built} ({p.home / dataset.marker})")
    for row in family_readiness(p.home):
        state = "ready" if row["ready"] else "not ready"
        lines.append(f"family {row['family'] + ':':<12} {state} (needs {row['needs']}; {row['why']})")
    return lines


def _clips_line(p, videos: list[str]) -> str:
    if not videos:
        clips = [c for c in p.clips.glob("*") if c.is_file()] if p.clips.is_dir() else []
        return f"clips:       {len(clips)} in {p.clips}"
    missing = missing_clips(videos, p.home)
    line = f"clips:       {len(videos) - len(missing)} of {len(videos)} annotated videos have a clip in {p.clips}"
    if len(missing) == len(videos):
        return (line + ": the clips are missing. JAAD's clips are downloaded separately from its "
                "annotations; put them there as video_XXXX.mp4 (see README, 'JAAD data')")
    if missing:
        return line + f"; {len(missing)} missing: {list_videos(missing)}"
    return line


# -- demo data ------------------------------------------------------------------------------
def cmd_demo_data(args) -> int:
    p = paths()
    if args.if_missing and p.annotations.is_dir() and any(p.annotations.glob("*.xml")):
        print(f"annotations already in {p.annotations}; not writing the demo set")
        return 0
    if args.videos < 1:
        raise ConfigError(f"--videos {args.videos} must be 1 or more.")
    from pedsense.data.synthetic import make_demo_dataset

    started = time.perf_counter()
    make_demo_dataset(p.home, n_videos=args.videos, seed=args.seed,
                      progress=TerminalProgress("demo-data"), overwrite=args.overwrite)
    print(f"wrote a synthetic demo set of {args.videos} videos to {p.raw} "
          f"in {time.perf_counter() - started:.1f} s (SYNTHETIC data, not JAAD)")
    print(f"next: {next_step(p.home)}")
    return 0


# -- get-annotations --------------------------------------------------------------------------
def cmd_get_annotations(args) -> int:
    from pedsense.data.download import JAAD_ANNOTATIONS_URL, download_annotations

    url = args.url or JAAD_ANNOTATIONS_URL
    result = download_annotations(url=url, progress=TerminalProgress("download"))
    print(f"{result['videos']} JAAD annotation files in {result['path']} "
          f"({', '.join(result['folders'])}) from {url}")
    print(f"next: {next_step(paths().home)}")
    return 0


# -- preprocess -----------------------------------------------------------------------------
def cmd_preprocess(args) -> int:
    steps = ["frames", "yolo", "detector", "resnet", "crops"] if args.step == "all" else [args.step]
    crop_size = parse_crop_size(args.crop_size)
    intent_options(args)  # fail before extracting frames
    for step in steps:
        started = time.perf_counter()
        summary = _STEPS[step](args, crop_size, TerminalProgress(step))
        print(f"{step}: {_describe_summary(step, summary)} ({time.perf_counter() - started:.1f} s)")
    return 0


def intent_options(args) -> IntentOptions:
    """The one ``IntentOptions`` of the parsed ``--tte/--overlap/--sample-type/--irrelevant/
    --placement`` options (the observation length is ``--sequence-length``)."""
    return IntentOptions(obs_length=args.sequence_length, tte=args.tte, overlap=args.overlap,
                         sample_type=args.sample_type, irrelevant=args.irrelevant,
                         placement=args.placement)


def task_kwargs(args) -> dict:
    """The task keywords every dataset build takes, from the parsed options."""
    return {"split": args.split, "task": args.task, "intent": intent_options(args)}


def _frames(args, crop_size, progress) -> dict:
    from pedsense.data.frames import extract_frames

    summary = extract_frames(args.video, fps=args.fps, annotated_only=args.annotated_only, progress=progress)
    # videos without a clip are named once, in one summarised warning; other failures one each
    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    for video, problem in summary["failed"].items():
        if video not in summary["missing_clips"]:
            print(f"warning: {video} skipped: {problem}", file=sys.stderr)
    return summary


def _yolo(args, crop_size, progress) -> dict:
    from pedsense.data.yolo_format import build_yolo_dataset

    return build_yolo_dataset(frame_step=args.frame_step, progress=progress, **task_kwargs(args))


def _detector(args, crop_size, progress) -> dict:
    from pedsense.data.yolo_format import build_detector_dataset

    return build_detector_dataset(frame_step=args.frame_step, progress=progress, **task_kwargs(args))


def _resnet(args, crop_size, progress) -> dict:
    from pedsense.data.resnet_format import build_resnet_sequences

    # the sequence length is the observation length here
    return build_resnet_sequences(args.sequence_length, args.stride, crop_size, progress=progress,
                                  **task_kwargs(args))


def _crops(args, crop_size, progress) -> dict:
    from pedsense.data.resnet_format import build_resnet_crops

    return build_resnet_crops(crop_size, frame_step=args.frame_step, progress=progress, **task_kwargs(args))


def _context(args, crop_size, progress) -> dict:
    from pedsense.data.context_format import build_context_dataset

    # annotations only: the benchmark's windows as feature arrays (no clips, no frames)
    return build_context_dataset(sample_type=args.sample_type, split=args.split,
                                 intent=intent_options(args), progress=progress)


_STEPS: dict[str, Callable] = {"frames": _frames, "yolo": _yolo, "detector": _detector,
                               "resnet": _resnet, "crops": _crops, "context": _context}


def _describe_summary(step: str, summary: dict) -> str:
    if step == "frames":
        no_clip = len(summary["missing_clips"])
        return (f"{len(summary['extracted'])} videos extracted, {len(summary['skipped'])} already done, "
                f"{len(summary['failed'])} failed" + (f" ({no_clip} without a clip)" if no_clip else "")
                + f"; {summary['frames_total']} frames")
    counts = summary.get("counts", {})
    parts = ", ".join(f"{part} {_count(c)}" for part, c in counts.items())
    reused = " (unchanged, reused)" if summary.get("reused") else ""
    text = f"{parts} -> {summary.get('path')}{reused}"
    for line in summary.get("summary", []):
        text += f"\n  {line}"
    for warning in summary.get("warnings", []):
        text += f"\n  warning: {warning}"
    return text


def _count(part_counts: dict) -> str:
    if "images" in part_counts:
        boxes = ", ".join(f"{k} {v}" for k, v in part_counts["boxes"].items())
        unlabelled = part_counts.get("unlabelled_boxes")
        return f"{part_counts['images']} images ({boxes}{f', unlabelled {unlabelled}' if unlabelled else ''})"
    return "(" + ", ".join(f"{k} {v}" for k, v in part_counts.items()) + ")"


# -- info -----------------------------------------------------------------------------------
def cmd_info(args) -> int:
    p = paths()
    print(format_stats(dataset_stats(p.home)))
    print()
    for line in describe_data(p):
        print(line)
    return 0


# -- windows --------------------------------------------------------------------------------
def cmd_windows(args) -> int:
    """Tracks / windows (crossing / not) per split for sample types ``beh`` and ``all``."""
    from pedsense.data.intent_dataset import collect_intent_windows
    from pedsense.data.jaad import load_annotations
    from pedsense.data.splits import split_videos

    p = paths()
    annotations = load_annotations(p.annotations, p.attributes)
    if not annotations:
        raise ConfigError(f"No annotations in {p.annotations}. Put JAAD's annotations/ there "
                          "(README, 'JAAD data') or run `pedsense demo-data`.")
    video_split = split_videos(sorted(annotations), split=args.split, home=p.home)
    print(f"{len(annotations)} annotated videos, split {video_split.source}, "
          f"crossing=-1 {args.irrelevant}, windows by {args.placement}")
    print(f"{'set':<10} {'tracks':>7} {'windows':>8} {'crossing':>9} {'not':>6}")
    for sample_type in ("beh", "all"):
        options = IntentOptions(sample_type=sample_type, irrelevant=args.irrelevant,
                                placement=args.placement)
        dataset = collect_intent_windows(annotations, video_split, options)
        tracks, counts = dataset.pedestrian_counts(), dataset.class_counts()
        for part in ("train", "val", "test"):
            c = counts[part]
            print(f"{sample_type + ' ' + part:<10} {tracks[part]:>7} {c['total']:>8} "
                  f"{c['crossing']:>9} {c['not-crossing']:>6}")
    return 0
