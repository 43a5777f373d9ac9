"""Train ResNet-LSTM: ResNet features of 16-frame crop sequences into an LSTM."""

from ui.forms import trainer_page

trainer_page("resnet-lstm", needs=("data/processed/resnet/labels.csv",))
