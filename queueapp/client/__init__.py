"""The demo A2A client behind ``manage.py a2a_client``."""
