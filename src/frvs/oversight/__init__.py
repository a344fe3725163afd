"""Oversight: API keys and roles, the hash-chained audit trail, audited façades over the
biometric services, subject export and erasure, and statistics for transparency reports.

Public entry points: ``Oversight`` (built by ``frvs.app``), ``AuditTrail``,
``KeyService``, ``AuditedGalleryService``, ``AuditedFaceEngine``, ``Role``.
"""
