"""Interview-room service: record a room's cameras and microphone during a session, gaplessly.

ffmpeg (one process per camera) writes audio + video into MPEG-TS segments with a burned-in
overlay; OpenCV watches the live picture; each closed segment is hashed, chained in the custody
log and handed to the same ingest pipeline as recorder footage. See docs/interview.md.
"""
