"""The Viewer's clip picker: clips under ``data/raw/clips``, earlier uploads, a new upload; and
the list of stored uploads (name, size, date) with a delete button each.

Uploads are stored by ``pedsense.infer.clips`` under names taken from their content, so two
people uploading ``clip.mp4`` never overwrite each other's; the limit per file is
``MAX_UPLOAD_MB`` (the one Streamlit's ``server.maxUploadSize`` is set to) and all uploads
together stay under ``MAX_UPLOADS_TOTAL_MB``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pedsense.errors import PedsenseError
from ui.feedback import error_box, show_error

UPLOAD = "Upload a clip"
CLIP_KEY = "viewer_clip"


def clip_ui() -> Path | None:
    """A clip from ``data/raw/clips``, an earlier upload or a new one; its path once it decodes."""
    from pedsense.infer.clips import MAX_UPLOAD_MB, list_clips, list_uploads, uploads_dir

    clips = {clip.name: clip for clip in list_clips()}
    uploads = {u.path.name: u for u in list_uploads()}
    options = [*clips, *uploads, UPLOAD]
    if st.session_state.get(CLIP_KEY) not in options:  # e.g. an upload deleted in another tab
        st.session_state.pop(CLIP_KEY, None)
    labels = {name: f"{u.name} (uploaded {u.uploaded_at[:16].replace('T', ' ')})" for name, u in uploads.items()}
    chosen = st.selectbox("Clip", options, key=CLIP_KEY, format_func=lambda o: labels.get(o, o),
                          help="Clips in `data/raw/clips`, clips uploaded before, or your own mp4/avi/webm.")
    if chosen in clips:
        return clips[chosen]
    if chosen in uploads:
        return uploads_dir() / chosen
    uploaded = st.file_uploader(f"Video (mp4, avi or webm; at most {MAX_UPLOAD_MB} MB)",
                                type=["mp4", "avi", "webm"], key="viewer_upload")
    if uploaded is None:
        return None
    cached = st.session_state.get("viewer_uploaded")
    if cached and cached[0] == (uploaded.name, uploaded.size) and Path(cached[1]).is_file():
        return Path(cached[1])
    from pedsense.infer.clips import save_upload

    try:
        path, _ = save_upload(uploaded.name, uploaded.getvalue())
    except PedsenseError as exc:
        show_error(exc, "reading the upload")
        return None
    st.session_state["viewer_uploaded"] = ((uploaded.name, uploaded.size), str(path))
    return path


def uploads_ui() -> None:
    """Stored uploads with size and date, each deletable; the space they use of the cap."""
    from pedsense.infer.clips import MAX_UPLOADS_TOTAL_MB, list_uploads

    uploads = list_uploads()
    if not uploads:
        return
    used_mb = sum(u.size_bytes for u in uploads) / 2**20
    with st.expander(f"Uploaded clips: {len(uploads)}, {used_mb:.0f} MB of {MAX_UPLOADS_TOTAL_MB} MB"):
        for upload in uploads:
            name, size, when, delete = st.columns([4, 1, 2, 1], vertical_alignment="center")
            name.markdown(f"`{upload.name}`", help=f"stored as `data/uploads/{upload.path.name}`")
            size.caption(f"{upload.size_bytes / 2**20:.1f} MB")
            when.caption(upload.uploaded_at[:19].replace("T", " "))
            if delete.button(":material/delete: Delete", key=f"upload.delete.{upload.path.name}"):
                _delete(upload.path.name)


def _delete(file_name: str) -> None:
    from pedsense.infer.clips import delete_upload

    with error_box("deleting the upload"):
        delete_upload(file_name)
        if st.session_state.get("viewer_uploaded", (None, ""))[1].endswith(file_name):
            st.session_state.pop("viewer_uploaded", None)
        st.toast(f"Deleted the upload {file_name}", icon=":material/delete:")
        st.rerun()
