"""Train YOLO: fine-tune YOLO26 as a 2-class crossing / not-crossing detector."""

from ui.forms import trainer_page

trainer_page("yolo", needs=("data/processed/yolo/data.yaml",))
