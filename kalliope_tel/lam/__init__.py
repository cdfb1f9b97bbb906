"""LAM: licensed virtual meeting rooms, their calendars, invitations,
time-boxed meeting links and a phone dial-in with the same rules."""
