"""Twilio set-up from the command line: webhook configuration, the doctor's checks."""
