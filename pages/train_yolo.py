"""Train YOLO: fine-tune YOLO26 as a 2-class crossing / not-crossing detector."""

from pages.common import trainer_page

trainer_page(
    "yolo",
    title="Train YOLO26",
    intro="Fine-tunes a YOLO26 detector with two classes, not-crossing (0) and crossing (1), "
          "on `data/processed/yolo`. Submitting queues the run and opens its live view.",
    needs=("data/processed/yolo/data.yaml",),
)
