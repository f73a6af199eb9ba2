"""`revpulse dev`: the embedded broker and Redis, their supervision, and simulated traffic."""
