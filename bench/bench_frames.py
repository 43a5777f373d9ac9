"""Frame extraction throughput: ``extract_frames`` against ``ffmpeg -i clip -q:v 2 out/%06d.jpg``.

Both write every frame of the same clip as JPEG; each is timed ``--repeats`` times, alternating,
and the best time of each is compared. Prints frames per second of both and the ratio
(pedsense / ffmpeg; target >= 1.0).

    .venv/bin/python bench/bench_frames.py [--clip PATH] [--frames 300] [--size 1280x720]

ffmpeg is installed with ``apt-get install -y ffmpeg`` when missing (it is not a dependency of
pedsense). Without ``--clip``, a synthetic demo clip is written to a temporary data home.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from pedsense.data.frames import extract_frames  # noqa: E402
from pedsense.io import link_or_copy  # noqa: E402


def ensure_ffmpeg() -> str:
    """Path of ffmpeg, installing the Debian package when it is missing."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("ffmpeg not found; installing it with apt-get", flush=True)
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=False)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "ffmpeg"], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    found = shutil.which("ffmpeg")
    if not found:
        raise SystemExit("ffmpeg could not be installed; install it and run the bench again")
    return found


def make_clip(home: Path, frames: int, size: tuple[int, int]) -> Path:
    """A demo clip under ``home``: the synthetic demo set when it is available, else moving shapes."""
    try:
        from pedsense.data.synthetic import make_demo_dataset

        make_demo_dataset(home, n_videos=1, seed=0, num_frames=frames, width=size[0], height=size[1])
        return next((home / "data" / "raw" / "clips").glob("*.mp4"))
    except ImportError:
        pass
    clip = home / "data" / "raw" / "clips" / "video_0001.mp4"
    clip.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, size)
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    for i in range(frames):
        frame = background.copy()
        cv2.circle(frame, (20 + 3 * i % size[0], size[1] // 2), 40, (0, 0, 255), -1)
        writer.write(frame)
    writer.release()
    return clip


def time_pedsense(clip: Path, work: Path) -> tuple[float, int]:
    """Seconds and frames for ``extract_frames`` of ``clip`` into a fresh data home."""
    home = work / "pedsense_home"
    shutil.rmtree(home, ignore_errors=True)
    (home / "data" / "raw" / "clips").mkdir(parents=True)
    link_or_copy(clip, home / "data" / "raw" / "clips" / clip.name)
    started = time.perf_counter()
    summary = extract_frames(clip.stem, home=home)
    return time.perf_counter() - started, summary["frames_written"]


def time_ffmpeg(ffmpeg: str, clip: Path, work: Path) -> tuple[float, int]:
    out = work / "ffmpeg_out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run([ffmpeg, "-v", "error", "-i", str(clip), "-q:v", "2", str(out / "%06d.jpg")], check=True)
    return time.perf_counter() - started, len(list(out.glob("*.jpg")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, help="an existing clip (default: write a demo clip)")
    parser.add_argument("--frames", type=int, default=300, help="frames in the demo clip")
    parser.add_argument("--size", default="1280x720", help="demo clip size WxH")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ffmpeg = ensure_ffmpeg()
    with tempfile.TemporaryDirectory(prefix="bench_frames_") as tmp:
        work = Path(tmp)
        size = tuple(int(v) for v in args.size.lower().split("x"))
        clip = args.clip or make_clip(work / "demo", args.frames, size)
        ours, theirs = [], []
        for _ in range(args.repeats):  # alternate, so load from other processes hits both alike
            ours.append(time_pedsense(clip, work))
            theirs.append(time_ffmpeg(ffmpeg, clip, work))
        (t_ours, n_ours), (t_ffmpeg, n_ffmpeg) = min(ours), min(theirs)
    print(f"clip: {clip.name}, {n_ours} frames (ffmpeg wrote {n_ffmpeg}), best of {args.repeats}")
    print(f"pedsense extract_frames: {n_ours / t_ours:8.1f} frames/s ({t_ours:.2f} s)")
    print(f"ffmpeg -q:v 2:           {n_ffmpeg / t_ffmpeg:8.1f} frames/s ({t_ffmpeg:.2f} s)")
    print(f"throughput ratio pedsense/ffmpeg: {(n_ours / t_ours) / (n_ffmpeg / t_ffmpeg):.2f} (target >= 1.0)")


if __name__ == "__main__":
    main()
