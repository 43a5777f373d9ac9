"""Train ResNet-LSTM: ResNet-50 features of 16-frame crop sequences into an LSTM."""

from pages.common import trainer_page

trainer_page(
    "resnet-lstm",
    title="Train ResNet-50 + LSTM",
    intro="Classifies 16-frame pedestrian crop sequences (3×224×224 each) as crossing or "
          "not-crossing: a ResNet-50 backbone per frame, an LSTM over time. Submitting queues the "
          "run and opens its live view.",
    needs=("data/processed/resnet/labels.csv",),
)
