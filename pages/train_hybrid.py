"""Train Hybrid: a YOLO26 pedestrian detector (stage 1) plus a ResNet intent classifier."""

from ui.forms import trainer_page
from ui.state import enter_page

enter_page()  # before anything is drawn: the sign-in (ui.auth)

trainer_page("hybrid", needs=("data/processed/yolo_detector/data.yaml", "data/processed/resnet/crops.csv"))
