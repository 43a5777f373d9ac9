"""`pedsense` subcommands: predict (overlay video of a clip), evaluate (metrics of a run) and
export (a run's models as ONNX or OpenVINO IR, for faster CPU inference)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pedsense.config import paths
from pedsense.runfolder import find_run

# pedsense.infer.backends.BACKENDS and pedsense.export.FORMATS, written out so that `pedsense
# --help` does not import the inference stack (tests/test_infer_engines.py keeps them equal)
BACKEND_CHOICES = ("auto", "onnx", "openvino", "openvino-bf16", "pytorch")
EXPORT_FORMATS = ("onnx", "openvino")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``predict``, ``evaluate`` and ``export`` to the `pedsense` parser."""
    predict = subparsers.add_parser(
        "predict", help="render a clip with a run's predictions drawn on it (VP9 WebM)",
        description="Predict every frame of VIDEO with RUN and write the overlay video.")
    predict.add_argument("run", help="run folder, or id such as hybrid/hybrid_20250101_120000")
    predict.add_argument("video", help="clip path, or a video id under data/raw/clips (video_0001)")
    predict.add_argument("-o", "--output", help="output .webm (default: <run>/renders/<clip>.webm)")
    predict.add_argument("--conf", type=float, default=0.25, help="detector confidence threshold")
    predict.add_argument("--no-ground-truth", action="store_true", help="do not draw annotated boxes")
    predict.add_argument("--tracker-run", help="ResNet-LSTM on a clip without annotations: "
                                               "a YOLO or hybrid run whose detector tracks pedestrians")
    predict.add_argument("--device", help="cpu, cuda, cuda:0, mps (default: auto)")
    predict.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                         help="auto (default): on a CPU, per stage the fastest measured here of PyTorch "
                              "and the run's exports (`pedsense export`), OpenVINO bf16 only where it agrees "
                              "with float32; PyTorch on a GPU. openvino-bf16: the ResNet parts in bfloat16 "
                              "(CPUs with bf16 units)")
    predict.set_defaults(func=run_predict)

    evaluate = subparsers.add_parser(
        "evaluate", help="intent metrics (and mAP for detector runs) of a run on a split",
        description="Evaluate RUN and save evaluation_<split>.json in its folder.")
    evaluate.add_argument("run", help="run folder, or id such as yolo/yolo_20250101_120000")
    evaluate.add_argument("--split", choices=("val", "test", "train"), default="val")
    evaluate.add_argument("--device", help="cpu, cuda, cuda:0, mps (default: auto)")
    evaluate.add_argument("--max-images", type=int, default=200,
                          help="frames used for intent on matched detections (default 200)")
    evaluate.add_argument("--json", action="store_true", help="print the whole result as JSON")
    evaluate.set_defaults(func=run_evaluate)

    export = subparsers.add_parser(
        "export", help="export a run's models to ONNX or OpenVINO (faster CPU inference)",
        description="Write RUN's models as ONNX files (ONNX Runtime) or OpenVINO IR into its folder and "
                    "record them in export.json; predict and the Viewer then run each stage on the "
                    "fastest engine measured on the machine (timed on first use).")
    export.add_argument("run", help="run folder, or id such as resnet-lstm/resnet-lstm_20250101_120000")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="onnx", help="export format (default onnx)")
    export.add_argument("--opset", type=int, help="ONNX opset (default: Ultralytics' for YOLO, 17 for ResNets)")
    export.set_defaults(func=run_export)


def _clip_path(video: str) -> Path:
    given = Path(video)
    return given if given.exists() or given.suffix else paths().clip(video)


def _print_progress(done: int, total: int, message: str) -> None:
    if done == total or done % 25 == 0:
        print(f"\r{message}", end="\n" if done == total else "", file=sys.stderr, flush=True)


def run_predict(args: argparse.Namespace) -> int:
    from pedsense.infer import load_clip_ground_truth, load_predictor, render_video
    from pedsense.infer.render import check_output

    run = find_run(args.run)
    video = _clip_path(args.video)
    if args.output is not None:  # before the model loads: a wrong -o is said at once
        check_output(args.output)
    ground_truth, why = load_clip_ground_truth(video)
    if why:
        print(why, file=sys.stderr)
    tracker = find_run(args.tracker_run).path if args.tracker_run else None
    predictor = load_predictor(run.path, device=args.device, conf=args.conf, tracker_run=tracker,
                               backend=args.backend)
    print(f"backend: {predictor.describe_backend()}", file=sys.stderr)
    summary = render_video(predictor, video, args.output, ground_truth=ground_truth,
                           show_ground_truth=not args.no_ground_truth, progress=_print_progress)
    print(f"wrote {summary.output} ({summary.codec}, {summary.frames} frames {summary.width}x{summary.height}, "
          f"{summary.fps_achieved} fps)")
    print(f"pedestrians {summary.pedestrians}; boxes: crossing {summary.crossing}, "
          f"not-crossing {summary.not_crossing}, buffering {summary.buffering}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from pedsense.export import describe_export, export_run

    record = export_run(args.run, args.format, opset=args.opset)
    print(f"exported {record['model_type']} run to {args.format}:")
    for line in describe_export(record):
        print(f"  {line}")
    print("predict and the Viewer now time this run's engines on first use and run each stage on the "
          "fastest on this CPU (export.json, export_timings.json).")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from pedsense.evaluation import evaluate

    result = evaluate(args.run, args.split, device=args.device, max_images=args.max_images,
                      progress=_print_progress)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['run']} scored on the '{result['split']}' split:")
    for section in ("intent", "matched_intent", "detection"):
        values = result.get(section)
        if not values:
            continue
        if "skipped" in values:
            print(f"  {section}: skipped — {values['skipped']}")
            continue
        shown = {k: v for k, v in values.items() if isinstance(v, (int, float)) and v is not None}
        print(f"  {section}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in shown.items()))
        if "confusion_matrix" in values:
            (tn, fp), (fn, tp) = values["confusion_matrix"]
            print(f"    confusion (rows true, cols predicted; not-crossing, crossing): [[{tn}, {fp}], [{fn}, {tp}]]")
    print_benchmark(result.get("benchmark") or {})
    if result.get("predictions"):
        kept = result["predictions"]
        print(f"every sample's prediction: {kept['file']} in the run folder ({kept['rows']} rows; "
              "the dashboard's Errors page browses them)")
    return 0


METRIC_COLUMNS = ("accuracy", "auc_binary", "roc_auc", "f1", "precision", "recall")


def print_benchmark(benchmark: dict) -> None:
    """The benchmark view of an evaluation: metrics, breakdown and reference tables."""
    if not benchmark or "skipped" in benchmark:
        if benchmark.get("skipped"):
            print(f"\nbenchmark: skipped — {benchmark['skipped']}")
        return
    options = benchmark.get("intent_options") or {}
    tte = "-".join(str(t) for t in options.get("tte") or ())
    protocol = (f" (obs {options.get('obs_length')}, TTE {tte}, sample {options.get('sample_type')}, "
                f"crossing=-1 {options.get('irrelevant')}, windows by {options.get('placement')})"
                if options else "")
    split = benchmark.get("split", "?")
    print(f"\nbenchmark metrics on the '{split}' split (data split {benchmark.get('data_split', '?')}) "
          f"— task {benchmark['task']}{protocol}, on {benchmark['unit']}"
          + (", synthetic data" if benchmark.get("synthetic") else "") + ":")
    print("  auc_binary is the benchmark's AUC (from thresholded predictions): it is the one to set "
          "beside published AUCs; roc_auc is from the probabilities.")
    print(format_table([benchmark["metrics"]], ("n", "positives", *METRIC_COLUMNS)))
    if benchmark.get("baselines"):
        print("\ntrivial baselines on the same samples (one answer for every sample):")
        print(format_table(benchmark["baselines"], ("model", "n", *METRIC_COLUMNS)))
    if benchmark.get("breakdown"):
        print("\nbreakdown by TTE bin, occlusion, time of day and weather:")
        print(format_table(benchmark["breakdown"], ("factor", "group", "n", "positives", *METRIC_COLUMNS)))
    elif benchmark.get("breakdown_note"):
        print(f"\nbreakdown: {benchmark['breakdown_note']}")
    if benchmark.get("reference"):
        print("\npublished JAAD results (Kotseruba et al., WACV 2021; test-split numbers) beside this run:")
        if split != "test":
            print(f"  caveat: this evaluation is on '{split}', so no row is comparable; "
                  "evaluate with --split test for the benchmark's numbers.")
        print(format_table(benchmark["reference"],
                           ("model", "dataset", "accuracy", "auc_binary", "roc_auc", "f1", "inputs",
                            "comparison")))
        for row in benchmark["reference"]:
            if row.get("caveats"):
                print(f"  {row['model']}: {row['caveats']}")


def format_table(rows: list[dict], columns: tuple[str, ...]) -> str:
    """A plain-text table: one header line, then one line per row (floats to 3 decimals, None as —)."""
    def cell(value) -> str:
        if value is None:
            return "—"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    table = [list(columns)] + [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join("  " + "  ".join(text.ljust(w) for text, w in zip(line, widths)).rstrip()
                     for line in table)
