"""Rewards: pure rules (rules.py), reward plug-ins (plugins.py), killable scoring (pool.py, scoring.py)."""
