"""Watch-list alerts: one per track whose best match in a watch-list gallery passes its
threshold, reviewed by people (two-person rule), delivered to subscribers and webhooks.

``AlertService`` (service), records in ``models``, delivery in ``notify``
(``AlertBus`` in-process pub/sub, ``WebhookNotifier``)."""
