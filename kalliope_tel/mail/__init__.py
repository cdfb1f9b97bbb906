"""Mail: the one gate for headers, composing messages, sending over SMTP."""
