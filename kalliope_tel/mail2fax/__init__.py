"""Mail2Fax: fax requests sent by e-mail to a box (IMAP with IDLE, or POP3),
read as the KalliopePBX documentation says, queued as fax jobs."""
