"""Train Hybrid: a YOLO26 pedestrian detector (stage 1) plus a ResNet-50 intent classifier."""

from pages.common import trainer_page

trainer_page(
    "hybrid",
    title="Train the hybrid",
    intro="Stage 1 trains a 1-class YOLO26 pedestrian detector (or reuses one you pick); stage 2 "
          "trains a ResNet-50 classifier on ground-truth crops. Submitting queues the run and opens "
          "its live view.",
    needs=("data/processed/yolo_detector/data.yaml", "data/processed/resnet/crops.csv"),
)
