"""The dashboard's Streamlit helpers: state, forms, charts, feedback, the run view, panels.

Only ``app.py``, ``pages/`` and this package import streamlit. Pages lay out widgets and call
these helpers; the helpers call the ``pedsense`` library, which never imports streamlit.
Imports flow one way: pages -> ui -> pedsense.
"""
