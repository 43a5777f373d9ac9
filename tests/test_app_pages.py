"""Every dashboard page renders (AppTest) on an empty data home and on the demo set."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = {
    "pages/overview.py": "pedsense",
    "pages/data.py": "Data",
    "pages/train_yolo.py": "Train YOLO26",
    "pages/train_resnet_lstm.py": "Train ResNet-50 + LSTM",
    "pages/train_hybrid.py": "Train the hybrid",
    "pages/train_context.py": "Train Context",
    "pages/runs.py": "Runs",
    "pages/viewer.py": "Viewer",
    "pages/sweep.py": "Sweeps",
    "pages/leaderboard.py": "Leaderboard",
    "pages/errors.py": "Errors",
}


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page != "pages/overview.py":
        at.switch_page(page)
        at.run()
    return at


def assert_renders(at: AppTest, title: str) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert any(title in t.value for t in at.title)


def test_sidebar_shows_home_device_and_training(tmp_home):
    # AppTest keeps the sidebar of st.navigation apps only on the first (default-page) run, so
    # the sidebar of the other pages is checked in a real browser (tests/test_browser.py).
    at = open_page("pages/overview.py")
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    # the data home by name: the server's absolute paths stay private
    assert f"`{tmp_home.name}`" in sidebar and str(tmp_home) not in sidebar
    assert "Device" in sidebar and "Training" in sidebar


@pytest.mark.parametrize("page", list(PAGES))
def test_page_renders_on_empty_home(tmp_home, page):
    at = open_page(page)
    assert_renders(at, PAGES[page])
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("page", list(PAGES))
def test_page_renders_on_demo_set(demo_home, page):
    at = open_page(page)
    assert_renders(at, PAGES[page])
    assert not at.error, [e.value for e in at.error]


def test_overview_offers_the_demo_set_on_an_empty_home(tmp_home):
    at = open_page("pages/overview.py")
    assert any("Make the demo set" in b.label for b in at.button)
    assert any("No data yet" in m.value for m in at.markdown)


def test_overview_on_demo_set_says_synthetic_and_built(demo_home):
    at = open_page("pages/overview.py")
    text = " ".join(m.value for m in at.markdown)
    assert "Synthetic demo set" in text
    assert ":material/check_box: YOLO dataset" in text


def test_data_page_makes_the_demo_set_in_the_background(tmp_home):
    from ui.state import job_manager

    at = open_page("pages/data.py")
    at.number_input[0].set_value(1)  # one clip is enough here
    next(b for b in at.button if "Make the demo set" in b.label).click()
    at.run()
    job_manager().wait_idle(120)
    at.run()
    assert not at.exception
    assert sorted(p.name for p in (tmp_home / "data/raw/annotations").glob("*.xml"))
    assert any("Make the synthetic demo set: done" in s.value for s in at.success)
    assert any("Synthetic demo set" in m.value for m in at.markdown)


def test_data_page_prepares_everything_with_class_balance(demo_raw_home):
    from ui.state import job_manager

    at = open_page("pages/data.py")
    next(b for b in at.button if "Prepare everything" in b.label).click()
    at.run()
    job_manager().wait_idle(180)
    at.run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert (demo_raw_home / "data/processed/yolo/data.yaml").is_file()
    assert (demo_raw_home / "data/processed/resnet/labels.csv").is_file()
    assert len(at.get("plotly_chart")) >= 3  # class balance of the built datasets
