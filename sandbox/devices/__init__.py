"""Devices: enrolment with an auth key, the Device object and lookups, approval, node attributes."""
