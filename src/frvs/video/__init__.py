"""Video: sources, capture with reconnects and latest-frame buffers, sampling, face
tracking (supervision's ByteTrack), best shots and per-track identity decisions.

Public pieces: ``open_source`` (sources), ``SourcePolicy`` (source_policy: what a camera
source or webhook may reach, checked when set and when opened), ``CaptureWorker``
(capture), ``FrameSampler`` (sampling), ``FaceTracker`` (tracking), ``BestShots``
(bestshot), ``TrackIdentity`` (identity), ``TrackProcessor`` (processor: frames in,
track events out), ``Matcher`` (ports) with ``TemplateMatcher`` (matching), and the
records in ``models``.
"""
