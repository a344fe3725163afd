"""Turning untrusted bytes into pixels, safely."""
