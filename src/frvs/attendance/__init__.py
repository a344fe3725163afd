"""Attendance: entry/exit cameras turn identified tracks of attendance-gallery subjects
into attendance events; a daily report gives first in, last out and time present."""
