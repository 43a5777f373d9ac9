"""A run's tags and note on its view: shown (the note as plain text, never as markup) and
edited in one form; stored by ``pedsense.runlabels`` (``labels.json``, atomic)."""

from __future__ import annotations

import streamlit as st

from pedsense.errors import PedsenseError
from pedsense.runfolder import find_run
from pedsense.runlabels import NOTE_MAX, change_tags, check_tag, read_labels, set_note
from ui.feedback import hide_paths
from ui.state import home


def split_tags(text: str) -> list[str]:
    """``"baseline, lr-sweep"`` → ``["baseline", "lr-sweep"]`` (commas part tags, so a tag
    typed with a space reaches :func:`check_tag` and is refused with the fix)."""
    return [part.strip() for part in str(text or "").split(",") if part.strip()]


def labels_ui(run_id: str) -> None:
    """The run's tags and note, and the form that changes them."""
    folder = find_run(run_id, home())
    labels = read_labels(folder)
    shown = " ".join(f"`{t}`" for t in labels.tags)
    archived = " · :gray-badge[:material/archive: archived]" if labels.archived else ""
    st.markdown(f":material/sell: {shown or 'no tags yet'}{archived}")
    if labels.note:
        st.text(labels.note)  # as typed: markup in a note is shown, not rendered
    with st.expander("Edit tags and note"):
        with st.form(f"labels.{run_id}", border=False):
            tags = st.text_input("Tags", value=", ".join(labels.tags), key=f"labels.tags.{run_id}",
                                 placeholder="baseline, lr-sweep",
                                 help="Separated by commas; each one word of letters, digits and . _ - : / +. "
                                      "Also `pedsense tag RUN +tag -tag`.")
            note = st.text_area("Note", value=labels.note, key=f"labels.note.{run_id}", max_chars=NOTE_MAX,
                                help="Plain text, shown as typed. Also `pedsense note RUN \"…\"`.")
            if st.form_submit_button("Save", type="primary"):
                save_labels(folder, labels.tags, tags, note)


def save_labels(folder, before: tuple[str, ...], tags_text: str, note: str) -> None:
    """Check every tag first (a bad one saves nothing), then write tags and note."""
    try:
        wanted = [check_tag(t) for t in split_tags(tags_text)]
        if len(note or "") > NOTE_MAX:
            raise PedsenseError(f"The note is {len(note)} characters long: keep it to {NOTE_MAX}.")
        change_tags(folder, add=set(wanted) - set(before), remove=set(before) - set(wanted))
        set_note(folder, note)
    except PedsenseError as exc:
        st.error(f"Nothing was saved: {hide_paths(exc)}", icon=":material/block:")
        return
    st.toast("Tags and note saved", icon=":material/check:")
    st.rerun()
