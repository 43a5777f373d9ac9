"""Train Context: a small GRU or transformer on JAAD's annotations alone (no clips needed)."""

from ui.forms import trainer_page
from ui.state import enter_page

enter_page()  # before anything is drawn: the sign-in (ui.auth)

trainer_page("context", needs=("data/processed/context/manifest.json",))
