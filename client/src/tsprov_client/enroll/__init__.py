"""``tsprov-enroll``: put this machine on the tailnet as a named person, through tsprov."""
