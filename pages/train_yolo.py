"""Train YOLO: fine-tune YOLO26 as a 2-class crossing / not-crossing detector."""

from ui.forms import trainer_page
from ui.state import enter_page

enter_page()  # before anything is drawn: the sign-in (ui.auth)

trainer_page("yolo", needs=("data/processed/yolo/data.yaml",))
