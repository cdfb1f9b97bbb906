"""Engines that talk to Asterisk: ARI, AMI and FastAGI."""
