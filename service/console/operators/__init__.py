"""/console, the operators' view: requests and their timelines, users, callers, the audit
trail and health, and the actions operators take (offboard, cancel, revoke).

access (who may enter), forms (query parameters into the domains' filters), pages (the GET
routes), actions (the POST routes, through the console's CSRF and confirmation step),
display (how values read on a page). Everything is read and done through the domains.
"""
