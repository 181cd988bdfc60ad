"""Pages for people signed in through Tailscale Serve (/me, /console).

identity (who is asking, from the trusted proxy), pages (templates, CSP), csrf and actions
(every action a POST with a token and a confirmation), routes (wiring). It calls the
domains' functions and never queries tables itself.
"""
