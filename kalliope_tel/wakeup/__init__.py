"""Wake-up calls (alarm clock service)."""
