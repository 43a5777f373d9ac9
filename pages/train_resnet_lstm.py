"""Train ResNet-LSTM: ResNet features of 16-frame crop sequences into an LSTM."""

from ui.forms import trainer_page
from ui.state import enter_page

enter_page()  # before anything is drawn: the sign-in (ui.auth)

trainer_page("resnet-lstm", needs=("data/processed/resnet/labels.csv",))
