"""Galleries, subjects and templates: enrolment, 1:N identify, N:M cross-match,
deletion, retention purge and reindexing (``GalleryService``)."""
