"""Wiring only: a camera's capture and analysis threads (camera), the events they
produce routed to sightings, alerts and attendance (events), the store-backed matcher
(matching), and the supervisor that starts, stops and reports on cameras."""
